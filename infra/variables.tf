variable "cloud_id" {
  description = "ID of the Yandex Cloud cloud that holds the folder."
  type        = string
}

variable "folder_id" {
  description = "ID of the folder for the service account; becomes remote.folder_id in plastinka.toml."
  type        = string
}

variable "organization_id" {
  description = "ID of the Yandex Cloud organization. DataSphere communities live at organization level."
  type        = string
}

variable "billing_account_id" {
  description = "ID of an ACTIVE billing account. A DataSphere community needs one to run anything; linking it needs billing.accounts.editor on it."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every name created here (community, project, service account)."
  type        = string
  default     = "plastinka"

  validation {
    # Service account names: lowercase letters, digits and hyphens, starting with a
    # letter; the prefix gets "-jobs" appended, so keep it short.
    condition     = can(regex("^[a-z][-a-z0-9]{1,40}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-42 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Labels put on the community and the project."
  type        = map(string)
  default = {
    app = "plastinka"
  }
}

variable "max_units_per_hour" {
  description = "Project limit: DataSphere units the project may spend per hour."
  type        = number
  default     = 20

  validation {
    condition     = var.max_units_per_hour > 0
    error_message = "max_units_per_hour must be positive."
  }
}

variable "max_units_per_execution" {
  description = "Project limit: DataSphere units one execution (one job run) may spend."
  type        = number
  default     = 200

  validation {
    condition     = var.max_units_per_execution > 0
    error_message = "max_units_per_execution must be positive."
  }
}

variable "balance" {
  description = "Project limit: total DataSphere units available to the project. null leaves the balance unset (no project-level cap beyond the two limits above)."
  type        = number
  default     = null
}

variable "create_service_account" {
  description = "Create a dedicated service account for jobs. When false, service_account_id must name an existing one; it still gets the project role and a new authorized key."
  type        = bool
  default     = true
}

variable "service_account_id" {
  description = "ID of an existing service account to use when create_service_account is false; ignored otherwise."
  type        = string
  default     = ""
}

variable "grant_folder_datasphere_user" {
  description = "Also grant the service account the folder-level datasphere.user role. DataSphere Jobs in a community project do not need it (access is by project role); it is for the folder-based DataSphere API and for calling deployed nodes."
  type        = bool
  default     = false
}
