//! DynamoDB attribute values and items.
