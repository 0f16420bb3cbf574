variable "domain_name" {
  description = "Name the site is served on (the CloudFront alias)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "The domain name must be a lower-case DNS name such as www.example.com."
  }
}

variable "certificate_domain" {
  description = "Domain of the ACM certificate in us-east-1 (a name in bootstrap.hcl's certificates.cloudfront)."
  type        = string

  validation {
    condition     = can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,63}$", var.certificate_domain))
    error_message = "The certificate domain must be a lower-case DNS name, optionally starting with *."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket holding the site's files."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket name must be 3 to 63 lower-case letters, digits, dots and hyphens."
  }
}

variable "index_document" {
  description = "Object served for the site's root."
  type        = string
  default     = "index.html"
}

variable "error_document" {
  description = "Object served for a missing page (with status 404)."
  type        = string
  default     = "404.html"
}

variable "price_class" {
  description = "CloudFront price class: PriceClass_100, PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.price_class)
    error_message = "The price class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "default_ttl" {
  description = "Seconds CloudFront caches an object without Cache-Control."
  type        = number
  default     = 3600

  validation {
    condition     = var.default_ttl >= 0 && var.default_ttl <= 86400
    error_message = "The default TTL must be between 0 and 86400 seconds."
  }
}

variable "create_record" {
  description = "Make an alias record of domain_name in zone_id."
  type        = bool
  default     = false
}

variable "zone_id" {
  description = "Route 53 zone of the site's alias record (needed with create_record)."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let a destroy delete the bucket with the site's files in it."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
