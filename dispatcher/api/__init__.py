"""The admin HTTP surface: routes and the OpenAPI document."""
