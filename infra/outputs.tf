# Each output maps onto one plastinka setting or environment variable:
#   project_id          -> [remote] project_id in plastinka.toml
#   folder_id           -> [remote] folder_id in plastinka.toml
#   authorized_key_json -> a file that YC_SERVICE_ACCOUNT_KEY_FILE points at
#   service_account_id  -> the identity jobs run as (for IAM grants, logs)
#   community_id        -> the DataSphere community (billing, console)

output "project_id" {
  description = "DataSphere project ID: remote.project_id in plastinka.toml."
  value       = yandex_datasphere_project.this.id
}

output "folder_id" {
  description = "Folder ID: remote.folder_id in plastinka.toml."
  value       = var.folder_id
}

output "service_account_id" {
  description = "ID of the service account that DataSphere Jobs run as."
  value       = local.service_account_id
}

output "community_id" {
  description = "DataSphere community ID that holds the project."
  value       = yandex_datasphere_community.this.id
}

output "authorized_key_json" {
  description = "Authorized key in the JSON format `yc iam key create` writes. Save it to a file (chmod 600) and point YC_SERVICE_ACCOUNT_KEY_FILE at it."
  sensitive   = true
  value = jsonencode({
    id                 = yandex_iam_service_account_key.jobs.id
    service_account_id = yandex_iam_service_account_key.jobs.service_account_id
    created_at         = yandex_iam_service_account_key.jobs.created_at
    key_algorithm      = yandex_iam_service_account_key.jobs.key_algorithm
    public_key         = yandex_iam_service_account_key.jobs.public_key
    private_key        = yandex_iam_service_account_key.jobs.private_key
  })
}
