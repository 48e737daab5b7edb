terraform {
  required_version = ">= 1.3"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # deletion_protection_enabled on aws_dynamodb_table needs 4.59
      version = ">= 4.59"
    }
  }
}
