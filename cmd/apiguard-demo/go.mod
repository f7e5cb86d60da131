module github.com/apiguard/apiguard/cmd/apiguard-demo

go 1.26.0

require (
	github.com/apiguard/apiguard v0.0.0-20261130044516-f87e5cf828d8
	github.com/apiguard/apiguard/sqlstore v0.0.0-20261130044516-f87e5cf828d8
)
