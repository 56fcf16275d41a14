# What plastinka's remote training needs in Yandex Cloud:
#   community (organization level, pays through the billing account)
#   └── project (limits on units spent)      -> remote.project_id
#   service account for jobs (in the folder)  -> service_account_id
#   └── authorized key (RSA_2048)             -> YC_SERVICE_ACCOUNT_KEY_FILE

locals {
  service_account_id = var.create_service_account ? yandex_iam_service_account.jobs[0].id : var.service_account_id
}

resource "yandex_datasphere_community" "this" {
  name               = "${var.name_prefix}-community"
  description        = "plastinka: forecasting model training (managed by terraform)"
  organization_id    = var.organization_id
  billing_account_id = var.billing_account_id
  labels             = var.labels
}

resource "yandex_iam_service_account" "jobs" {
  count = var.create_service_account ? 1 : 0

  name        = "${var.name_prefix}-jobs"
  description = "plastinka: runs DataSphere Jobs (managed by terraform)"
  folder_id   = var.folder_id
}

resource "yandex_datasphere_project" "this" {
  name         = "${var.name_prefix}-training"
  description  = "plastinka: remote training jobs (managed by terraform)"
  community_id = yandex_datasphere_community.this.id
  labels       = var.labels

  # Nested attributes in the provider (not blocks), hence "= { ... }".
  limits = {
    max_units_per_hour      = var.max_units_per_hour
    max_units_per_execution = var.max_units_per_execution
    balance                 = var.balance
  }

  settings = {
    # The project's own service account: the identity the project uses towards
    # other services. Jobs do not need it to start (they run as whoever calls the
    # API, which is why the account also gets the project role below); linking
    # it keeps one identity for everything plastinka does in the project.
    # verify: that setting it needs iam.serviceAccounts.user on the account for
    # whoever applies this (folder editor/admin has it); the provider docs only
    # say it is the "service account which linked to the resource". Drop this
    # line if apply is refused: jobs do not depend on it.
    service_account_id = local.service_account_id
    default_folder_id  = var.folder_id
  }
}

# Running a job is "using resources" in the project: Developer for the project.
# DataSphere's docs ask for exactly this for a service account that runs jobs
# (Managed Airflow integration: "add the cluster's service account to the
# DataSphere project with the Developer role or higher").
#
# Careful: a *_iam_binding is authoritative for its role on the project. Anyone
# else given Developer on this project outside terraform is removed on the next
# apply; add them to `members` here instead. (The provider has no
# yandex_datasphere_project_iam_member.)
# verify: that the role alone suffices, i.e. the account need not also be a
# member of the community (no community role is granted below). The docs state
# the project role; they say nothing of the community for service accounts.
resource "yandex_datasphere_project_iam_binding" "jobs_developer" {
  project_id = yandex_datasphere_project.this.id
  role       = "datasphere.community-projects.developer"
  members = [
    "serviceAccount:${local.service_account_id}",
  ]
}

# No community-level role is granted: creating projects is the only thing the
# jobs account would need one for (Developer for the community), and terraform
# creates the project itself.

# Optional: folder-level datasphere.user (see the variable's description).
# verify: that DataSphere Jobs in a community project never need it. The role
# name is confirmed (DataSphere docs: give datasphere.user to a service agent to
# call nodes); off by default because project access is by the project role.
resource "yandex_resourcemanager_folder_iam_member" "jobs_datasphere_user" {
  count = var.grant_folder_datasphere_user ? 1 : 0

  folder_id = var.folder_id
  role      = "datasphere.user"
  member    = "serviceAccount:${local.service_account_id}"
}

# Authorized key: plastinka signs a JWT with it and exchanges the JWT for an IAM
# token. The private key lands in the terraform state: keep the state private
# (infra/.gitignore keeps it out of git) or move it to a protected backend.
resource "yandex_iam_service_account_key" "jobs" {
  service_account_id = local.service_account_id
  description        = "plastinka: authorized key for DataSphere Jobs (managed by terraform)"
  key_algorithm      = "RSA_2048"

  lifecycle {
    precondition {
      condition     = var.create_service_account || var.service_account_id != ""
      error_message = "create_service_account is false, so service_account_id must name an existing service account."
    }
  }
}
