package main

// The manual pages, printed by --help at each level.

const globalOptions = `  --db URL             the database: postgres://USER:PASSWORD@HOST:PORT/DB,
                       sqlite:PATH or a file path (SQLite).
                       Default: $APIGUARD_DB.
  --actor NAME         who makes the change, for the audit table.
                       Default: $USER.
  --json               print JSON instead of a table.
  -h, --help           print this page.`

const exitStatus = `EXIT STATUS
  0  success.
  1  the change was refused (unknown client or key, revoked key, address
     not registered) or the database failed; nothing was changed.
  2  the command line is wrong (unknown command or option, malformed
     address range or time); nothing was changed.`

var helpTop = `NAME
  apiguard - manage the API keys of an apiguard key store

SYNOPSIS
  apiguard [--db URL] [--actor NAME] [--json] keys issue|rotate|revoke|list ...
  apiguard [--db URL] [--actor NAME] [--json] ips add|remove|list ...
  apiguard [COMMAND ...] --help

DESCRIPTION
  apiguard changes the keys that servers using github.com/apiguard/apiguard
  accept, in a PostgreSQL or SQLite database kept by the sqlstore package:
  it issues keys, rotates them with an overlap, revokes them, lists a
  client's keys and registers the IP addresses a key is accepted from.

  The database keeps SHA-256 digests of keys, not the keys: a key is shown
  once, when it is issued or rotated, and never again. Every change is
  recorded with its time and actor in the audit table, in the same
  transaction, and reaches every server within a second.

  The schema is created or migrated on first use. Options may come before
  or after the command's words.

COMMANDS
  keys issue    generate a key for a client
  keys rotate   replace a key; the old one works for an overlap (24h)
  keys revoke   end a key at once
  keys list     list a client's keys (never their secrets)
  ips add       register address ranges for a key
  ips remove    remove address ranges from a key
  ips list      list the address ranges of a key

OPTIONS
` + globalOptions + `

ENVIRONMENT
  APIGUARD_DB          the database URL when --db is not given.
  USER                 the actor when --actor is not given.

EXAMPLES
  export APIGUARD_DB=postgres://apiguard@db.internal/keys?sslmode=verify-full
  apiguard keys issue --client merchant-42 --env sandbox --scope payment:create
  apiguard keys rotate key_3f9c2a1b7d4e5f60
  apiguard --db sqlite:/var/lib/apiguard/keys.db keys list merchant-42
  apiguard ips add key_3f9c2a1b7d4e5f60 203.0.113.7

` + exitStatus + `
`

var helpKeys = `NAME
  apiguard keys - issue, rotate, revoke and list API keys

SYNOPSIS
  apiguard keys issue --client ID (--env sandbox|live | --prefix P) [OPTIONS]
  apiguard keys rotate [--overlap DURATION] KEY-ID
  apiguard keys revoke KEY-ID
  apiguard keys list CLIENT-ID

DESCRIPTION
  Keys belong to clients (an account, a merchant, a user). A key has an id
  (key_...), shown in lists and logs, and a secret, shown once. See each
  command's --help.

OPTIONS
` + globalOptions + `

EXAMPLES
  apiguard keys issue --client merchant-42 --env live --role gold
  apiguard keys list merchant-42 --json

` + exitStatus + `
`

var helpIssue = `NAME
  apiguard keys issue - generate an API key for a client

SYNOPSIS
  apiguard keys issue --client ID (--env sandbox|live | --prefix P)
                      [--kind server|publishable] [--scope S]... [--role R]
                      [--ip RANGE]... [--not-after TIME | --valid-for DURATION]
                      [--keep-secret] [--key-id ID]

DESCRIPTION
  Generates a key of 256 random bits after a prefix that tells its
  environment, stores its digest for the client, and prints the key. The
  key is shown this once: hand it to the client now. A client is known
  from its first key on; sandbox and live keys never cross.

OPTIONS
  --client ID          the client the key belongs to (required).
  --env sandbox|live   the environment; picks the prefix sk_test_/sk_live_
                       (pk_test_/pk_live_ for publishable keys).
  --prefix P           the key's prefix instead, such as SB- or live_
                       (letters, digits, '_' and '-'); it must agree with --env.
  --kind KIND          server (default) or publishable.
  --scope S            a permission, such as payment:create; repeat it or
                       separate scopes with commas.
  --role R             a role, such as gold.
  --ip RANGE           an address or range the key is accepted from, such as
                       203.0.113.7 or 203.0.113.0/24; repeatable. Default: any.
  --not-after TIME     when the key stops working (RFC 3339 or YYYY-MM-DD, UTC).
  --valid-for DURATION how long the key works, such as 2160h (90 days).
  --keep-secret        keep the key in plaintext too, for hash-signature
                       schemes that need the secret itself.
  --key-id ID          the key's id. Default: a random key_... id.
` + globalOptions + `

EXAMPLES
  apiguard keys issue --client merchant-42 --env sandbox \
      --scope payment:create,payment:read --ip 203.0.113.7
  apiguard keys issue --client reseller-7 --prefix SB- --keep-secret --json

` + exitStatus + `
`

var helpRotate = `NAME
  apiguard keys rotate - replace a key, keeping the old one for an overlap

SYNOPSIS
  apiguard keys rotate [--overlap DURATION] KEY-ID

DESCRIPTION
  Issues a new key for the same client, with the same prefix, kind,
  environment, scopes, role and address ranges, and prints it (once). The
  old key keeps working for the overlap, then stops. A rotated key cannot
  be rotated again: rotate its replacement.

OPTIONS
  --overlap DURATION   how long the old key keeps working, such as 24h or
                       90m; 0 ends it at once. Default: 24h.
` + globalOptions + `

EXAMPLES
  apiguard keys rotate key_3f9c2a1b7d4e5f60
  apiguard keys rotate --overlap 0 key_3f9c2a1b7d4e5f60

` + exitStatus + `
`

var helpRevoke = `NAME
  apiguard keys revoke - end a key at once

SYNOPSIS
  apiguard keys revoke KEY-ID

DESCRIPTION
  Revokes the key: every server refuses it within a second. A kept
  plaintext is erased. The key stays listed, as revoked.

OPTIONS
` + globalOptions + `

EXAMPLES
  apiguard keys revoke key_3f9c2a1b7d4e5f60 --actor alice

` + exitStatus + `
`

var helpList = `NAME
  apiguard keys list - list a client's keys

SYNOPSIS
  apiguard keys list CLIENT-ID
  apiguard keys list --client CLIENT-ID

DESCRIPTION
  Lists the client's keys, oldest first, with their state: active,
  rotated (replaced, working until its end), expired or revoked. Secrets
  and digests are never shown.

OPTIONS
  --client ID          the client, instead of the argument.
` + globalOptions + `

EXAMPLES
  apiguard keys list merchant-42
  apiguard keys list merchant-42 --json | jq '.[].key_id'

` + exitStatus + `
`

var helpIPs = `NAME
  apiguard ips - register the IP addresses a key is accepted from

SYNOPSIS
  apiguard ips add KEY-ID RANGE...
  apiguard ips remove KEY-ID RANGE...
  apiguard ips list KEY-ID

DESCRIPTION
  A key with registered ranges is accepted from those addresses only; a
  key with none, from any address. A range is an address (203.0.113.7,
  2001:db8::1) or a prefix with no host bits set (203.0.113.0/24): write
  203.0.113.7/32 for one address, not 203.0.113.7/24.

OPTIONS
` + globalOptions + `

EXAMPLES
  apiguard ips add key_3f9c2a1b7d4e5f60 203.0.113.7 198.51.100.0/24
  apiguard ips remove key_3f9c2a1b7d4e5f60 198.51.100.0/24
  apiguard ips list key_3f9c2a1b7d4e5f60 --json

` + exitStatus + `
`

var helpIPsAdd = `NAME
  apiguard ips add - register address ranges for a key

SYNOPSIS
  apiguard ips add KEY-ID RANGE...

DESCRIPTION
  Adds the ranges to the key's; ranges registered already are skipped.
  From then on the key is accepted from its ranges only. Prints the key's
  ranges.

OPTIONS
` + globalOptions + `

EXAMPLES
  apiguard ips add key_3f9c2a1b7d4e5f60 203.0.113.7
  apiguard ips add key_3f9c2a1b7d4e5f60 2001:db8::/48 198.51.100.0/24

` + exitStatus + `
`

var helpIPsRemove = `NAME
  apiguard ips remove - remove address ranges from a key

SYNOPSIS
  apiguard ips remove KEY-ID RANGE...

DESCRIPTION
  Removes the ranges from the key's. If one of them is not registered,
  nothing is removed. A key left with no range is accepted from any
  address. Prints the key's ranges.

OPTIONS
` + globalOptions + `

EXAMPLES
  apiguard ips remove key_3f9c2a1b7d4e5f60 203.0.113.7

` + exitStatus + `
`

var helpIPsList = `NAME
  apiguard ips list - list the address ranges of a key

SYNOPSIS
  apiguard ips list KEY-ID

DESCRIPTION
  Prints the key's registered ranges, one a line; none means any address.

OPTIONS
` + globalOptions + `

EXAMPLES
  apiguard ips list key_3f9c2a1b7d4e5f60

` + exitStatus + `
`
