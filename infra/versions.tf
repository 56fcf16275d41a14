# Terraform and provider versions for the DataSphere infrastructure that
# plastinka's remote training path (`[remote]` in plastinka.toml) needs.

terraform {
  required_version = ">= 1.6"

  required_providers {
    yandex = {
      source = "yandex-cloud/yandex"
      # The DataSphere resources (yandex_datasphere_community, _project and their
      # IAM bindings) exist since 0.100; "limits" and "settings" of the project are
      # nested attributes (written `limits = { ... }`), as in the provider's
      # current documentation.
      version = "~> 0.130"
    }
  }
}
