module github.com/apiguard/apiguard/cmd/apiguard-demo

go 1.26.0

require (
	github.com/apiguard/apiguard v0.0.0-20261130055752-0f555be97489
	github.com/apiguard/apiguard/otelapiguard v0.0.0-20261130055752-0f555be97489
	github.com/apiguard/apiguard/sqlstore v0.0.0-20261130055752-0f555be97489
	github.com/prometheus/client_golang v1.25.0
	github.com/prometheus/client_model v0.6.3
	github.com/prometheus/common v0.73.1
	go.opentelemetry.io/otel/exporters/prometheus v0.69.0
	go.opentelemetry.io/otel/sdk/metric v1.47.0
)
