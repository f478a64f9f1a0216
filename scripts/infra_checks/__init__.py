"""Offline validation of the infrastructure code and the Functions host files, as CI runs it.

scripts/validate-infra.sh installs the pinned tools (scripts/requirements-infra.txt) into
.venv-infra and runs `python -m infra_checks` (__main__.py) there. One module per check:

  cfn_lint          every CloudFormation template in infra/aws
  policies          every JSON policy written as a !Sub string (cfn-lint cannot see inside one)
                    and every role trust policy written as YAML objects: rendered with
                    placeholder values for every variant of the template's AllowedValues /
                    optional parameters, checked for a valid IAM policy shape (a web-identity
                    trust must condition on aud AND sub, a Roles Anywhere trust on the
                    certificate's subject AND the trust anchor), then the rendered !Sub
                    templates go through cfn-lint, which validates them as policy objects
  checkov_scan      infra/ (Bicep and CloudFormation), offline (--skip-download); fails on a
                    template checkov could not parse (checkov itself exits 0 then), on any
                    failed check, and on any skip without a written reason
  bicep_parameters  every *.parameters*.json beside a .bicep names declared parameters only,
                    with values of the declared type, allowed values and bounds
  flex_site_config  no Flex Consumption site (FC1 plan or functionAppConfig) in the Bicep
                    templates sets a site config property ARM rejects for Flex (error 51021:
                    ftpsState, use32BitWorkerProcess, linuxFxVersion, alwaysOn, ...)
  bicep_names       the names main.bicep derives (the deployment package's blob container, the
                    storage account) evaluated for representative app and base names with a
                    small evaluator of the Bicep expressions used, against the naming rules
  certificate_policy  every Key Vault certificate policy in azure/ (*certificate-policy*.json,
                    what `az keyvault certificate create --policy` reads in roles-anywhere
                    mode): a non-exportable RSA-HSM or EC-HSM P-256 key, a PEM secret, a CN,
                    digitalSignature, no AutoRenew with issuer Unknown
  schemas           host.json, */function.json, local.settings.json.example against
                    SchemaStore's schemas, vendored in schemastore/ (no download)
  targets_schema    targets.example.json against targets.schema.json
  settings          every setting the Bicep template, the parameters examples and
                    local.settings.json.example set, and every setting a CloudFormation output
                    gives the value of (the output then named after it), is one README.md or a
                    docs/*.md page documents (or a platform setting), none is one Flex Consumption does not
                    support (TZ, WEBSITE_TIME_ZONE), and every %Setting% a function.json binds
                    to is set by the template
  alert_texts       every text a log alert in the Bicep template searches for
                    (`message contains "..."`) is one the app's source still writes
  self_test         copies of the above with one deliberate defect each; the check concerned
                    must fail on it, for the expected reason (one case runs the whole validation
                    to prove a failing check fails the run), so a check that silently stopped
                    checking shows up

Shared: common.py (CheckFailed, the output lines, running a tool), runner.py (the list of
checks, running them), unit_tests.py (runs tests/ first). Unit tests: tests/, standard-library
unittest: `.venv-infra/bin/python -m unittest discover -s scripts/infra_checks/tests -t scripts`.
"""
