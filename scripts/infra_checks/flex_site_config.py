"""Check `flex site config`: no Flex Consumption site in INFRA/azure/*.bicep sets a site
configuration property that Azure Resource Manager rejects for Flex sites.

ARM refuses such a deployment with error 51021 (FtpsState, Use32BitWorkerProcess,
NetFrameworkVersion, FunctionsRuntimeScaleMonitoringEnabled, PreWarmedInstanceCount; reported
as well: LinuxFxVersion, FunctionAppScaleLimit, AlwaysOn), and nothing offline noticed: checkov
even asks for ftpsState (CKV_AZURE_78). A site is Flex when its serverFarmId is the `id` of a
plan whose SKU is FC1 (tier FlexConsumption), or when it has a functionAppConfig (only Flex
sites have one). Its properties.siteConfig is checked, and so is every
Microsoft.Web/sites/config 'web' resource whose parent is that site. Property names are compared
case-insensitively, as ARM does. A template set without any Flex site fails too: this
repository deploys one, so finding none means the detection stopped working.
The templates are parsed with checkov's Bicep parser (pycep-parser, pinned by checkov).
Called by runner.py (the `flex site config` line) and self_test.py; unit-tested in
tests/test_flex_site_config.py.
Flex Consumption deprecations:
https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
"""

from pathlib import Path

from .bicep_parameters import parser
from .common import CheckFailed, sorted_glob

# Lower-cased: compared case-insensitively.
REJECTED = {
    "ftpsstate", "use32bitworkerprocess", "netframeworkversion",
    "functionsruntimescalemonitoringenabled", "prewarmedinstancecount",
    "linuxfxversion", "functionappscalelimit", "alwayson",
}


def resources(bicep_text):
    """symbolic name -> (type, config) of every resource of a .bicep text, as pycep parses it."""
    parsed = parser().parse(text=bicep_text).get("resources", {})
    out = {}
    for name, r in parsed.items():
        if isinstance(r, dict) and isinstance(r.get("config"), dict):
            out[name] = ((r.get("type") or "").lower(), r["config"])
    return out


def is_flex_plan(config):
    sku = config.get("sku") if isinstance(config.get("sku"), dict) else {}
    return (str(sku.get("name", "")).upper() == "FC1"
            or str(sku.get("tier", "")).lower() == "flexconsumption")


def referenced_symbol(value, prop="id"):
    """`plan` for the expression `plan.id` as pycep parses it; None for anything else."""
    op = value.get("operator") if isinstance(value, dict) else None
    if isinstance(op, dict) and op.get("type") == "property_accessor":
        operands = op.get("operands") or {}
        if operands.get("operand_2") == prop and isinstance(operands.get("operand_1"), str):
            return operands["operand_1"]
    return None


def flex_sites(res):
    """The symbolic names of the Flex Consumption sites among `res` (see resources())."""
    plans = {name for name, (kind, config) in res.items()
             if kind == "microsoft.web/serverfarms" and is_flex_plan(config)}
    sites = []
    for name, (kind, config) in res.items():
        if kind != "microsoft.web/sites":
            continue
        props = config.get("properties") if isinstance(config.get("properties"), dict) else {}
        if referenced_symbol(props.get("serverFarmId")) in plans or "functionAppConfig" in props:
            sites.append(name)
    return sites


def rejected_in(settings):
    """The keys of `settings` (a siteConfig object) that ARM rejects for Flex sites."""
    if not isinstance(settings, dict):
        return []
    return sorted(k for k in settings if k.lower() in REJECTED)


def problems_of(bicep_text, where):
    """(number of Flex sites, the problems) of one .bicep text; `where` names it in messages."""
    res = resources(bicep_text)
    sites = flex_sites(res)
    problems = []
    for site in sites:
        props = res[site][1].get("properties") or {}
        problems += ["%s: Flex Consumption site '%s' sets siteConfig.%s, which ARM rejects for Flex sites (error 51021)"
                     % (where, site, key) for key in rejected_in(props.get("siteConfig"))]
    for name, (kind, config) in res.items():
        if kind == "microsoft.web/sites/config" and config.get("parent") in sites and config.get("name") == "web":
            problems += ["%s: site config '%s' of Flex Consumption site '%s' sets %s, which ARM rejects for Flex sites (error 51021)"
                         % (where, name, config["parent"], key) for key in rejected_in(config.get("properties"))]
    return len(sites), problems


def check_flex_site_config(infra):
    """infra: holds azure/*.bicep. Returns the summary; raises CheckFailed."""
    files = sorted_glob(Path(infra) / "azure", "*.bicep")
    count, problems = 0, []
    for bicep in files:
        try:
            n, p = problems_of(bicep.read_text(), str(bicep))
        except Exception as e:  # the parser's errors share no base class
            raise CheckFailed("flex site config: cannot parse %s" % bicep,
                              str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        count, problems = count + n, problems + p
    summary = "flex site config: %d Flex Consumption site(s) in %d template(s)" % (count, len(files))
    if count == 0:
        raise CheckFailed(summary, "no Microsoft.Web/sites on an FC1 plan (or with a functionAppConfig) found: "
                                   "the check would check nothing")
    if problems:
        raise CheckFailed(summary, "\n".join(problems))
    return summary + ", none sets a site config property ARM rejects for Flex"
