# Credentials are deliberately NOT a variable here. The provider reads them from
# the environment of whoever runs terraform:
#   YC_TOKEN                     an IAM token (`yc iam create-token`) or an OAuth token
#   YC_SERVICE_ACCOUNT_KEY_FILE  path to (or contents of) an authorized key JSON
# Only one of the two may be set. plastinka itself reads YC_SERVICE_ACCOUNT_KEY_FILE
# too (the key this configuration creates), so unset it in the shell that runs
# terraform, or terraform would log in as the jobs service account; see README.md.

provider "yandex" {
  cloud_id  = var.cloud_id
  folder_id = var.folder_id
}
