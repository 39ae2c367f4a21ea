# The Vault/OpenBao ACL policy of the identity that runs rotations with provider=vault
# (mounts at their defaults: transit, secret, jwt). It can manage the collection's keys,
# records, roles and decrypt policies, and encrypt (the canary); it cannot decrypt.
path "transit/keys/*" {
  capabilities = ["create", "read", "update"]
}
path "transit/encrypt/*" {
  capabilities = ["update"]
}
path "secret/data/tee-kms/*" {
  capabilities = ["create", "read", "update"]
}
path "auth/jwt/role/tee-kms-*" {
  capabilities = ["create", "read", "update"]
}
path "sys/policies/acl/tee-kms-*" {
  capabilities = ["create", "read", "update"]
}
