output "table_name" {
  description = "For usage_gate_dynamodb table=..."
  value       = aws_dynamodb_table.usage.name
}

output "table_arn" {
  description = "ARN of the usage table."
  value       = aws_dynamodb_table.usage.arn
}

output "iam_actions" {
  description = "The DynamoDB actions the gate calls."
  value       = local.gate_actions
}

output "policy_json" {
  description = "The least-privilege policy document, to attach elsewhere if create_policy is false."
  value       = data.aws_iam_policy_document.gate.json
}

output "policy_arn" {
  description = "ARN of the IAM policy, or null if create_policy is false."
  value       = var.create_policy ? aws_iam_policy.gate[0].arn : null
}
