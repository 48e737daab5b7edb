"""terraform/: the table module and its IAM policy match what the
module sends.

The .tf files are converted to JSON with @cdktf/hcl2json (npm, installed in
t/node_modules by t/tools/setup.sh) and compared with src/ug_ddb.h: the key
schema with UG_DDB_ATTR_OWNER / UG_DDB_ATTR_MONTH, the IAM actions with
UG_DDB_IAM_ACTIONS, which must in turn cover every UG_DDB_OP_* the module
sends.  No terraform binary is needed.  Stdlib only.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
TF_DIR = os.path.join(TOP, "terraform")
T_DIR = os.path.join(TOP, "t")
HCL2JSON = os.path.join(T_DIR, "node_modules", "@cdktf", "hcl2json")
HEADER = os.path.join(TOP, "src", "ug_ddb.h")

TF_FILES = ["main.tf", "variables.tf", "outputs.tf", "versions.tf"]

# Prints {"file.tf": <hcl2json of it>, ...}; exits 1 on a parse error.
CONVERT = r"""
const { parse } = require(process.env.UG_HCL2JSON);
const fs = require("fs");
const path = require("path");
(async () => {
    const out = {};
    for (const f of process.argv.slice(1)) {
        out[path.basename(f)] = await parse(f, fs.readFileSync(f, "utf8"));
    }
    process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def node():
    return shutil.which("node")


def hcl2json(paths):
    """Returns (exit code, parsed JSON or None, stderr)."""
    env = dict(os.environ, UG_HCL2JSON=HCL2JSON)
    p = subprocess.run([node(), "-e", CONVERT] + list(paths), cwd=T_DIR,
                       env=env, capture_output=True, text=True, timeout=60)
    data = json.loads(p.stdout) if p.returncode == 0 else None
    return p.returncode, data, p.stderr


def header_defines():
    """#define NAME "string" lines of src/ug_ddb.h."""
    defs = {}
    with open(HEADER, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'\s*#\s*define\s+(\w+)\s+"([^"]*)"\s*$', line)
            if m:
                defs[m.group(1)] = m.group(2)
    return defs


def one(blocks, what):
    """hcl2json gives every block as a list; ours are all single."""
    if not isinstance(blocks, list) or len(blocks) != 1:
        raise AssertionError(f"expected exactly one {what}, got {blocks!r}")
    return blocks[0]


class TerraformModule(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if node() is None:
            raise AssertionError("node is not installed (t/tools/setup.sh)")
        if not os.path.isdir(HCL2JSON):
            raise AssertionError(
                f"{HCL2JSON} is missing: run t/tools/setup.sh "
                "(npm install in t/)")

        paths = [os.path.join(TF_DIR, f) for f in TF_FILES]
        rc, data, err = hcl2json(paths)
        if rc != 0:
            raise AssertionError(f"hcl2json failed: {err}")

        cls.files = data
        cls.defs = header_defines()

        cls.resource = {}
        cls.data = {}
        cls.variables = {}
        cls.outputs = {}
        cls.locals = {}
        for doc in data.values():
            for kind, byname in doc.get("resource", {}).items():
                for name, blocks in byname.items():
                    cls.resource[(kind, name)] = one(blocks, kind)
            for kind, byname in doc.get("data", {}).items():
                for name, blocks in byname.items():
                    cls.data[(kind, name)] = one(blocks, kind)
            for name, blocks in doc.get("variable", {}).items():
                cls.variables[name] = one(blocks, "variable " + name)
            for name, blocks in doc.get("output", {}).items():
                cls.outputs[name] = one(blocks, "output " + name)
            for block in doc.get("locals", []):
                cls.locals.update(block)

    def resolve(self, value):
        """A "${local.x}" reference to its literal value."""
        m = isinstance(value, str) and re.fullmatch(r"\$\{local\.(\w+)\}",
                                                    value)
        if m:
            self.assertIn(m.group(1), self.locals)
            return self.locals[m.group(1)]
        return value

    def table(self):
        tables = [k for k in self.resource if k[0] == "aws_dynamodb_table"]
        self.assertEqual(len(tables), 1, tables)
        return tables[0][1], self.resource[tables[0]]

    def test_files(self):
        for f in TF_FILES + ["README.md"]:
            self.assertTrue(os.path.isfile(os.path.join(TF_DIR, f)), f)

    def test_key_schema_is_what_the_module_sends(self):
        _, t = self.table()
        owner = self.defs["UG_DDB_ATTR_OWNER"]
        month = self.defs["UG_DDB_ATTR_MONTH"]
        self.assertEqual((owner, month), ("owner", "month"))
        self.assertEqual(t["hash_key"], owner)
        self.assertEqual(t["range_key"], month)
        attrs = {a["name"]: a["type"] for a in t["attribute"]}
        # DynamoDB refuses attribute definitions not used by a key
        self.assertEqual(attrs, {owner: "S", month: "S"})
        self.assertEqual(len(t["attribute"]), 2)

    def test_on_demand_billing(self):
        _, t = self.table()
        self.assertEqual(t["billing_mode"], "PAY_PER_REQUEST")
        self.assertNotIn("read_capacity", t)
        self.assertNotIn("write_capacity", t)

    def test_point_in_time_recovery(self):
        _, t = self.table()
        pitr = one(t.get("point_in_time_recovery"), "point_in_time_recovery")
        self.assertIs(pitr["enabled"], True)

    def test_ttl_is_optional_and_off_by_default(self):
        _, t = self.table()
        self.assertNotIn("ttl", t)     # no static, always-on TTL block
        dyn = one(t["dynamic"]["ttl"], "dynamic ttl")
        self.assertIn("var.ttl_attribute", dyn["for_each"])
        content = one(dyn["content"], "ttl content")
        self.assertEqual(content["attribute_name"], "${ttl.value}")
        self.assertIs(content["enabled"], True)
        self.assertIsNone(self.variables["ttl_attribute"]["default"])

    def test_tags(self):
        _, t = self.table()
        self.assertIn("tags", t)
        self.assertEqual(self.variables["tags"]["default"], {})

    def test_iam_actions_are_exactly_the_modules(self):
        wanted = self.defs["UG_DDB_IAM_ACTIONS"].split()
        self.assertEqual(len(wanted), len(set(wanted)))

        docs = [v for k, v in self.data.items()
                if k[0] == "aws_iam_policy_document"]
        self.assertEqual(len(docs), 1)
        stmt = one(docs[0]["statement"], "policy statement")

        self.assertEqual(stmt.get("effect", "Allow"), "Allow")
        actions = self.resolve(stmt["actions"])
        self.assertIsInstance(actions, list)
        self.assertEqual(sorted(actions), sorted(wanted))
        for a in actions:
            self.assertNotIn("*", a)
        self.assertNotIn("not_actions", stmt)
        self.assertEqual(self.resolve(self.outputs["iam_actions"]["value"]),
                         actions)

    def test_iam_covers_every_operation_sent(self):
        ops = [v for k, v in self.defs.items() if k.startswith("UG_DDB_OP_")]
        self.assertTrue(ops)
        actions = self.defs["UG_DDB_IAM_ACTIONS"].split()
        self.assertEqual(sorted(actions), sorted("dynamodb:" + o for o in ops))

    def test_iam_resource_is_the_table_arn(self):
        name, _ = self.table()
        doc = [v for k, v in self.data.items()
               if k[0] == "aws_iam_policy_document"][0]
        stmt = one(doc["statement"], "policy statement")
        self.assertEqual(stmt["resources"],
                         ["${aws_dynamodb_table.%s.arn}" % name])

    def test_policy_is_the_document(self):
        pol = self.resource[("aws_iam_policy", "gate")]
        self.assertEqual(pol["policy"],
                         "${data.aws_iam_policy_document.gate.json}")

    def test_outputs(self):
        for o in ("table_name", "table_arn", "iam_actions", "policy_json",
                  "policy_arn"):
            self.assertIn(o, self.outputs)

    def test_provider(self):
        tf = one(self.files["versions.tf"]["terraform"], "terraform block")
        aws = one(tf["required_providers"], "required_providers")["aws"]
        self.assertEqual(aws["source"], "hashicorp/aws")

    def test_broken_hcl_is_refused(self):
        # the converter really parses: a syntax error fails the run
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.tf")
            with open(bad, "w") as f:
                f.write('resource "aws_dynamodb_table" "usage" {\n'
                        '  hash_key = "owner"\n')
            rc, data, _ = hcl2json([bad])
            self.assertNotEqual(rc, 0)
            self.assertIsNone(data)


if __name__ == "__main__":
    unittest.main()
