module github.com/apiguard/apiguard

go 1.26.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/hashicorp/golang-lru/v2 v2.0.7
	golang.org/x/time v0.16.0
)
