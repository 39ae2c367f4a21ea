# The identity that rotates key tokens-refresh (written by alfred.tee_kms.vault_key_access).
# Transit: read the key, create it once (aes256-gcm96, derived, nothing exportable), add versions,
# encrypt canaries. No decrypt, config, trim, export or delete.
path "transit/keys/tokens-refresh" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "type" = ["aes256-gcm96"]
    "derived" = [true]
  }
}
path "transit/keys/tokens-refresh/rotate" {
  capabilities = ["update"]
  denied_parameters = {
    "managed_key_name" = []
    "managed_key_id" = []
  }
}
path "transit/encrypt/tokens-refresh" {
  capabilities = ["update"]
}
# The key's records (primary version, lock, snapshot): written with check-and-set, never deleted.
path "secret/data/tee-kms/tokens-refresh/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/tee-kms/tokens-refresh/*" {
  capabilities = ["read"]
}
# The allow-list: the bound claims of the key's existing JWT role, and nothing else of it.
path "auth/jwt/role/tee-kms-tokens-refresh" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "role_type" = ["jwt"]
    "bound_claims" = []
  }
}
