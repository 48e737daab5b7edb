# The usage table of ngx_http_usage_gate_module and a least-privilege IAM
# policy for it.  Key schema: the seed's (owner S, month S "YYYY-MM"); the
# module keeps each owner's monthly count in the number attribute "count".

locals {
  tags = merge({ Name = var.table_name }, var.tags)

  # Exactly the calls the module makes: UG_DDB_IAM_ACTIONS in src/ug_ddb.h
  # (t/integration/test_terraform.py checks that the two agree).
  gate_actions = ["dynamodb:UpdateItem", "dynamodb:GetItem"]
}

resource "aws_dynamodb_table" "usage" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "owner"
  range_key    = "month"

  # user id, org id or anon:<hash>
  attribute {
    name = "owner"
    type = "S"
  }

  # "YYYY-MM", UTC
  attribute {
    name = "month"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  dynamic "ttl" {
    for_each = var.ttl_attribute == null ? [] : [var.ttl_attribute]

    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  dynamic "server_side_encryption" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      enabled     = true
      kms_key_arn = server_side_encryption.value
    }
  }

  deletion_protection_enabled = var.deletion_protection

  tags = local.tags
}

data "aws_iam_policy_document" "gate" {
  statement {
    sid       = "UsageGateCounters"
    effect    = "Allow"
    actions   = local.gate_actions
    resources = [aws_dynamodb_table.usage.arn]
  }
}

resource "aws_iam_policy" "gate" {
  count = var.create_policy ? 1 : 0

  name        = var.policy_name
  description = "ngx_http_usage_gate_module: read and update usage counters in ${var.table_name}"
  policy      = data.aws_iam_policy_document.gate.json

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "gate" {
  for_each = var.create_policy ? toset(var.role_names) : toset([])

  role       = each.value
  policy_arn = aws_iam_policy.gate[0].arn
}
