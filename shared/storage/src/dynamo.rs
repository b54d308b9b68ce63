//! DynamoDB adapter (aws-sdk-dynamodb + serde_dynamo).
