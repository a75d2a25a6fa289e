module dugaa.local/readme-receivers

go 1.24.0

require (
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/standard-webhooks/standard-webhooks/libraries v1.3.0
)
