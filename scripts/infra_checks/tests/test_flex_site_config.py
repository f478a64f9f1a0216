"""Tests of flex_site_config.py on small Bicep texts (parsed with checkov's pinned Bicep parser,
as the check does) and on this repository's template."""

import textwrap
import unittest
from pathlib import Path

from infra_checks.common import CheckFailed
from infra_checks.flex_site_config import check_flex_site_config, problems_of
from infra_checks.tests.fixtures import TempDirTestCase

INFRA = Path(__file__).resolve().parents[3] / "infra"


def plan(sku="FC1", tier="FlexConsumption"):
    return textwrap.dedent("""\
        resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
          name: 'plan'
          sku: {
            tier: '%s'
            name: '%s'
          }
        }
        """ % (tier, sku))


def site(site_config, extra=""):
    lines = "".join("      %s\n" % line for line in site_config)
    return textwrap.dedent("""\
        resource app 'Microsoft.Web/sites@2024-04-01' = {
          name: 'app'
          properties: {
            serverFarmId: plan.id
        %s    siteConfig: {
        %s    }
          }
        }
        """) % (extra, lines)


class ProblemsOf(unittest.TestCase):
    def test_a_rejected_property_is_found_in_any_case(self):
        count, problems = problems_of(plan() + site(["FtpsState: 'Disabled'", "http20Enabled: true",
                                                      "ALWAYSON: true"]), "t.bicep")
        self.assertEqual(count, 1)
        self.assertEqual(problems, [
            "t.bicep: Flex Consumption site 'app' sets siteConfig.ALWAYSON, which ARM rejects for Flex sites (error 51021)",
            "t.bicep: Flex Consumption site 'app' sets siteConfig.FtpsState, which ARM rejects for Flex sites (error 51021)",
        ])

    def test_every_property_of_the_list_is_rejected(self):
        props = ["ftpsState: 'Disabled'", "use32BitWorkerProcess: false", "netFrameworkVersion: 'v8.0'",
                 "functionsRuntimeScaleMonitoringEnabled: true", "preWarmedInstanceCount: 1",
                 "linuxFxVersion: 'custom'", "functionAppScaleLimit: 10", "alwaysOn: false"]
        _, problems = problems_of(plan() + site(props), "t.bicep")
        self.assertEqual(len(problems), 8)

    def test_allowed_properties_pass(self):
        self.assertEqual(problems_of(plan() + site(["minTlsVersion: '1.2'", "http20Enabled: true"]), "t"), (1, []))

    def test_a_site_on_another_plan_is_not_flex(self):
        for sku, tier in (("Y1", "Dynamic"), ("EP1", "ElasticPremium")):
            self.assertEqual(problems_of(plan(sku, tier) + site(["ftpsState: 'Disabled'"]), "t"), (0, []), sku)

    def test_the_tier_alone_marks_a_flex_plan(self):
        count, problems = problems_of(plan("XYZ", "FlexConsumption") + site(["ftpsState: 'Disabled'"]), "t")
        self.assertEqual((count, len(problems)), (1, 1))

    def test_a_function_app_config_marks_a_flex_site_whatever_its_plan(self):
        text = plan("Y1", "Dynamic") + site(["alwaysOn: true"], extra="    functionAppConfig: {}\n")
        count, problems = problems_of(text, "t")
        self.assertEqual((count, len(problems)), (1, 1))

    def test_a_web_config_resource_of_a_flex_site_is_checked(self):
        web = textwrap.dedent("""\
            resource web 'Microsoft.Web/sites/config@2024-04-01' = {
              parent: app
              name: 'web'
              properties: {
                linuxFxVersion: 'custom'
                http20Enabled: true
              }
            }
            """)
        _, problems = problems_of(plan() + site(["http20Enabled: true"]) + web, "t")
        self.assertEqual(problems, ["t: site config 'web' of Flex Consumption site 'app' sets linuxFxVersion, "
                                    "which ARM rejects for Flex sites (error 51021)"])


class CheckFlexSiteConfig(TempDirTestCase):
    def test_this_repository_passes(self):
        self.assertEqual(check_flex_site_config(INFRA),
                         "flex site config: 1 Flex Consumption site(s) in 1 template(s), "
                         "none sets a site config property ARM rejects for Flex")

    def test_a_rejected_property_fails_the_check(self):
        self.write("infra/azure/main.bicep", plan() + site(["use32BitWorkerProcess: false"]))
        with self.assertRaises(CheckFailed) as cm:
            check_flex_site_config(self.dir / "infra")
        self.assertIn("siteConfig.use32BitWorkerProcess", cm.exception.details)

    def test_no_flex_site_at_all_fails(self):
        self.write("infra/azure/main.bicep", plan("Y1", "Dynamic") + site([]))
        with self.assertRaises(CheckFailed) as cm:
            check_flex_site_config(self.dir / "infra")
        self.assertEqual(cm.exception.summary, "flex site config: 0 Flex Consumption site(s) in 1 template(s)")
        self.assertIn("would check nothing", cm.exception.details)

    def test_an_unparsable_template_fails(self):
        self.write("infra/azure/main.bicep", "resource x 'a@b' = {\n")
        with self.assertRaises(CheckFailed) as cm:
            check_flex_site_config(self.dir / "infra")
        self.assertTrue(cm.exception.summary.startswith("flex site config: cannot parse"))


if __name__ == "__main__":
    unittest.main()
