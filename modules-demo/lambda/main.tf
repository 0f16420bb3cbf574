# Demo twin of modules/lambda: the function's ARN names the package it would run.

terraform {
  required_version = ">= 1.0"
}

locals {
  arn = "arn:aws:lambda:demo:000000000000:function:${var.function_name}"
}
