"""Tests of settings.py: which docs count (README.md before the split into docs/, docs/*.md
after it, or both), which names the deployment sets, and the check on small trees."""

import json
import unittest

from infra_checks.common import CheckFailed
from infra_checks.settings import (check_settings, describe_docs, doc_files, documented_names,
                                   output_settings, settings_used, template_settings)
from infra_checks.tests.fixtures import TempDirTestCase

BICEP = """\
resource app 'Microsoft.Web/sites@2023-12-01' = {
  properties: {
    siteConfig: {
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'KeyVaultUrl'
          value: vault.properties.vaultUri
        }
        {
          name: 'TimerSchedule'
          value: timerSchedule
        }
      ]
    }
  }
}
resource other 'x@1' = {
  name: 'not-a-setting'
  location: location
}
"""
README = """\
# app

| setting | meaning |
|---|---|
| `KeyVaultUrl` | the vault |
| `TimerSchedule` | the timer |
"""


class Docs(TempDirTestCase):
    def test_readme_and_every_docs_page_in_order(self):
        readme = self.write("README.md", "")
        b, a = self.write("docs/b.md", ""), self.write("docs/a.md", "")
        self.write("docs/notes.txt", "")
        self.write("docs/sub/deep.md", "")
        self.assertEqual(doc_files(self.dir), [readme, a, b])
        self.assertEqual(describe_docs(self.dir, [readme, a, b]), "README.md + 2 docs/*.md page(s)")

    def test_readme_alone_before_the_split(self):
        readme = self.write("README.md", "")
        self.assertEqual(doc_files(self.dir), [readme])
        self.assertEqual(describe_docs(self.dir, [readme]), "README.md")

    def test_docs_alone(self):
        page = self.write("docs/settings.md", "")
        self.assertEqual(doc_files(self.dir), [page])
        self.assertEqual(describe_docs(self.dir, [page]), "1 docs/*.md page(s)")

    def test_documented_names_are_identifiers_in_backticks(self):
        page = self.write("docs/settings.md", "`KeyVaultUrl`, `Plain_Name2`, `a b`, `9x`, `--flag`\n")
        other = self.write("README.md", "| `TimerSchedule` | `0 0 * * * *` |\n")
        self.assertEqual(documented_names([page, other]), {"KeyVaultUrl", "Plain_Name2", "TimerSchedule"})


class Tree(TempDirTestCase):
    """A small repository: one Bicep template, a parameters file, the example settings, a
    function binding to %TimerSchedule%."""

    def setUp(self):
        super().setUp()
        self.write("infra/azure/main.bicep", BICEP)
        self.write("infra/azure/main.parameters.json", json.dumps(
            {"parameters": {"additionalAppSettings": {"value": {"ExpiryWarningSeconds": "1800"}}}}))
        self.write("local.settings.json.example", json.dumps(
            {"Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "KeyVaultUrl": "https://x"}}))
        self.write("Timer/function.json", json.dumps({"bindings": [{"schedule": "%TimerSchedule%"}]}))
        self.infra = self.dir / "infra"

    def check(self):
        return check_settings(self.infra, self.dir)

    def failure(self):
        with self.assertRaises(CheckFailed) as cm:
            self.check()
        return cm.exception

    def test_names_and_where_they_are_set_first(self):
        bicep = str(self.infra / "azure" / "main.bicep")
        self.assertEqual(template_settings(self.infra), {
            "AzureWebJobsStorage__accountName": bicep, "KeyVaultUrl": bicep, "TimerSchedule": bicep})
        used = settings_used(self.infra, self.dir)
        self.assertEqual(used["KeyVaultUrl"], bicep)
        self.assertEqual(used["ExpiryWarningSeconds"],
                         "%s (additionalAppSettings)" % (self.infra / "azure" / "main.parameters.json"))
        self.assertEqual(used["FUNCTIONS_WORKER_RUNTIME"], str(self.dir / "local.settings.json.example"))
        self.assertEqual(len(used), 5)

    def test_documented_in_readme_only_passes(self):
        self.write("README.md", README + "| `ExpiryWarningSeconds` | warn |\n")
        self.assertEqual(self.check(), "app settings: 5 setting name(s) checked against README.md "
                                       "and the function.json bindings")

    def test_documented_across_readme_and_docs_pages_passes(self):
        self.write("README.md", "# app\nSee docs/settings.md.\n")
        self.write("docs/settings.md", README)
        self.write("docs/alerts.md", "`ExpiryWarningSeconds` sets when the alert fires.\n")
        self.assertEqual(self.check(), "app settings: 5 setting name(s) checked against README.md + "
                                       "2 docs/*.md page(s) and the function.json bindings")

    def test_documented_in_docs_only_passes(self):
        self.write("docs/settings.md", README + "`ExpiryWarningSeconds`\n")
        self.assertIn("against 1 docs/*.md page(s)", self.check())

    def test_an_undocumented_setting_fails_wherever_it_is_set(self):
        self.write("README.md", README)
        e = self.failure()
        self.assertEqual(e.summary, "app settings: 5 setting name(s) checked")
        self.assertEqual(e.details, "%s (additionalAppSettings) sets ExpiryWarningSeconds, which README.md and "
                                    "docs/*.md do not document as a setting"
                         % (self.infra / "azure" / "main.parameters.json"))

    def test_a_misspelt_template_setting_fails(self):
        self.write("README.md", README + "`ExpiryWarningSeconds`\n")
        self.write("infra/azure/main.bicep", BICEP.replace("'TimerSchedule'", "'TimerSchedul'"))
        details = self.failure().details.splitlines()
        self.assertEqual(len(details), 2)
        self.assertIn("sets TimerSchedul, which README.md and docs/*.md do not document", details[0])
        self.assertIn("binds to %TimerSchedule%, which no Bicep template sets", details[1])

    def test_a_binding_setting_only_in_the_example_is_not_enough(self):
        self.write("README.md", README + "`ExpiryWarningSeconds` `Other`\n")
        self.write("Timer/function.json", json.dumps({"bindings": [{"schedule": "%Other%"}]}))
        self.assertIn("binds to %Other%", self.failure().details)

    def test_a_time_zone_setting_fails_even_when_documented(self):
        self.write("README.md", README + "`ExpiryWarningSeconds` `WEBSITE_TIME_ZONE` `TZ`\n")
        self.write("infra/azure/main.parameters.json", json.dumps(
            {"parameters": {"additionalAppSettings": {"value": {"WEBSITE_TIME_ZONE": "UTC"}}}}))
        self.write("local.settings.json.example", json.dumps({"Values": {"TZ": "Europe/Paris"}}))
        details = self.failure().details.splitlines()
        self.assertEqual(len(details), 2)
        self.assertTrue(all("which Flex Consumption does not support (the timer runs in UTC)" in d for d in details))
        self.assertIn("sets TZ,", details[0])
        self.assertIn("(additionalAppSettings) sets WEBSITE_TIME_ZONE,", details[1])

    def write_outputs(self, outputs):
        return self.write("infra/aws/stack.yaml", "AWSTemplateFormatVersion: '2010-09-09'\nResources: {}\n"
                          "Outputs:\n" + outputs)

    def test_outputs_that_give_an_app_setting_are_found(self):
        stack = self.write_outputs(
            "  KeyVaultUrl:\n    Description: Set as the Function App's KeyVaultUrl app setting.\n"
            "    Value: !GetAtt Vault.Uri\n"
            "  Other:\n    Description: Not a setting.\n    Value: x\n"
            "  NoDescription:\n    Value: y\n")
        self.write("infra/aws/unreadable.yaml", "Outputs: [\n")
        self.assertEqual(output_settings(self.infra), [(str(stack), "KeyVaultUrl", "KeyVaultUrl")])

    def test_an_output_setting_is_checked_like_any_other(self):
        self.write("README.md", README + "`ExpiryWarningSeconds`\n")
        stack = self.write_outputs("  RoleArn:\n    Description: Set as the Function App's RoleArn app setting.\n"
                                   "    Value: x\n")
        self.assertEqual(settings_used(self.infra, self.dir)["RoleArn"], "%s (output RoleArn)" % stack)
        e = self.failure()
        self.assertEqual(e.summary, "app settings: 6 setting name(s) checked")
        self.assertEqual(e.details, "%s (output RoleArn) sets RoleArn, which README.md and docs/*.md do not "
                                    "document as a setting" % stack)
        self.write("docs/modes.md", "`RoleArn`\n")
        self.assertIn("6 setting name(s) checked", self.check())

    def test_an_output_not_named_after_its_setting_fails(self):
        self.write("README.md", README + "`ExpiryWarningSeconds`\n")
        stack = self.write_outputs("  Vault:\n    Description: Set as the Function App's KeyVaultUrl app setting.\n"
                                   "    Value: x\n")
        self.assertEqual(self.failure().details, "%s: output Vault gives the KeyVaultUrl app setting: name it "
                                                 "KeyVaultUrl (deployers look outputs up by the setting's name)" % stack)

    def test_no_docs_at_all_fails(self):
        e = self.failure()
        self.assertIn("no README.md or docs/*.md", e.summary)


if __name__ == "__main__":
    unittest.main()
