//! DynamoDB expressions: parsing and evaluation.
