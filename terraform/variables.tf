variable "table_name" {
  description = "Name of the usage table (usage_gate_dynamodb table=...)."
  type        = string
  default     = "sentientiq-usage"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table_name))
    error_message = "A DynamoDB table name is 3 to 255 of A-Z a-z 0-9 _ . -."
  }
}

variable "ttl_attribute" {
  description = <<-EOT
    Name of a numeric attribute holding an expiry time (unix seconds) for
    past months' items, or null to keep every month forever (the default:
    usage is billing data).  The gate writes it only when configured with
    the same attribute name.
  EOT
  type        = string
  default     = null

  validation {
    condition = var.ttl_attribute == null ? true : (
      can(regex("^[A-Za-z0-9_.-]{1,64}$", var.ttl_attribute))
      && !contains(["owner", "month", "count"], var.ttl_attribute)
    )
    error_message = "ttl_attribute must be 1 to 64 of A-Z a-z 0-9 _ . - and not owner, month or count."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the table (it holds billing data)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "A customer managed KMS key for encryption at rest, or null for the AWS owned key."
  type        = string
  default     = null
}

variable "create_policy" {
  description = "Create the IAM policy for the gate (the policy document is output either way)."
  type        = bool
  default     = true
}

variable "policy_name" {
  description = "Name of the IAM policy that lets the gate use the table."
  type        = string
  default     = "usage-gate-dynamodb"
}

variable "role_names" {
  description = "IAM roles (of the hosts or tasks running nginx) to attach the policy to."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the table and the policy."
  type        = map(string)
  default     = {}
}
