"""The GraphQL layer: thin types and resolvers over `domain` actions and queries."""
