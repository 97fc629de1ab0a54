//! The JSON documents of the Lambda API, named and spelled as in botocore's model
//! (`PascalCase` members). Request types ignore members Gust does not use (VPC, KMS, tracing…);
//! members whose meaning Gust cannot honour are refused by the handlers instead.

use std::collections::BTreeMap;

use gust_model::{function_arn, ApiDefinition, CorsConfig, FunctionRecord};
use serde::{Deserialize, Serialize};

/// `FunctionCode`: where a deployment package comes from.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCode {
    /// Base64 of the zip (botocore encodes blobs so).
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    pub image_uri: Option<String>,
}

/// `Environment` in requests.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentIn {
    pub variables: Option<BTreeMap<String, String>>,
}

/// `EphemeralStorage`, both ways.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    pub size: u32,
}

/// `CreateFunctionRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionRequest {
    pub function_name: String,
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub code: Option<FunctionCode>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    /// Accepted and ignored: Gust has no published versions.
    pub publish: Option<bool>,
    pub package_type: Option<String>,
    pub environment: Option<EnvironmentIn>,
    pub tags: Option<BTreeMap<String, String>>,
    pub layers: Option<Vec<String>>,
    pub architectures: Option<Vec<String>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Gust extension: environments kept warm.
    pub gust_provisioned_concurrency: Option<u32>,
}

/// `UpdateFunctionCodeRequest` (body part).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionCodeRequest {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    pub image_uri: Option<String>,
    /// Accepted and ignored: Gust has no published versions.
    pub publish: Option<bool>,
    /// Validate the package and report the would-be configuration without changing anything.
    pub dry_run: Option<bool>,
    pub revision_id: Option<String>,
    pub architectures: Option<Vec<String>>,
}

/// `UpdateFunctionConfigurationRequest` (body part). Absent members stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionConfigurationRequest {
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    /// Replaces all variables (`{}` or no `Variables` clears them), as in Lambda.
    pub environment: Option<EnvironmentIn>,
    pub runtime: Option<String>,
    pub revision_id: Option<String>,
    pub layers: Option<Vec<String>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Gust extension: environments kept warm.
    pub gust_provisioned_concurrency: Option<u32>,
}

/// `PutFunctionConcurrencyRequest` (body part), also the `Concurrency` output.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Concurrency {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrent_executions: Option<u32>,
}

/// `TagResourceRequest` (body part).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub tags: BTreeMap<String, String>,
}

/// `ListTagsResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsResponse {
    pub tags: BTreeMap<String, String>,
}

/// `EnvironmentResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentOut {
    pub variables: BTreeMap<String, String>,
}

/// `TracingConfigResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfig {
    pub mode: &'static str,
}

/// `SnapStartResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapStart {
    pub apply_on: &'static str,
    pub optimization_status: &'static str,
}

/// `LoggingConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    pub log_format: &'static str,
    pub log_group: String,
}

/// `FunctionConfiguration`, what most management operations return.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: String,
    pub runtime: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
    pub handler: String,
    pub code_size: u64,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    pub last_modified: String,
    pub code_sha256: String,
    pub version: &'static str,
    /// Omitted when the function has no variables, as Lambda does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentOut>,
    pub tracing_config: TracingConfig,
    pub revision_id: String,
    pub state: &'static str,
    pub last_update_status: &'static str,
    pub package_type: &'static str,
    pub architectures: [&'static str; 1],
    pub ephemeral_storage: EphemeralStorage,
    pub snap_start: SnapStart,
    pub logging_config: LoggingConfig,
    /// Gust extension, present when provisioned concurrency is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gust_provisioned_concurrency: Option<u32>,
}

impl FunctionConfiguration {
    /// How `record` looks on the wire in `region`.
    pub fn from_record(record: &FunctionRecord, region: &str) -> FunctionConfiguration {
        let c = &record.config;
        FunctionConfiguration {
            function_name: c.name.clone(),
            function_arn: function_arn(region, &c.name),
            runtime: c.runtime.clone(),
            role: c.role.clone(),
            handler: c.handler.clone(),
            code_size: record.code_size,
            description: c.description.clone(),
            timeout: c.timeout,
            memory_size: c.memory_size,
            last_modified: record.last_modified.clone(),
            code_sha256: record.code_sha256.clone(),
            version: "$LATEST",
            environment: (!c.environment.is_empty()).then(|| EnvironmentOut {
                variables: c.environment.clone(),
            }),
            tracing_config: TracingConfig {
                mode: "PassThrough",
            },
            revision_id: record.revision_id.clone(),
            state: "Active",
            last_update_status: "Successful",
            package_type: "Zip",
            architectures: ["x86_64"],
            ephemeral_storage: EphemeralStorage {
                size: c.ephemeral_storage,
            },
            snap_start: SnapStart {
                apply_on: "None",
                optimization_status: "Off",
            },
            logging_config: LoggingConfig {
                log_format: "Text",
                log_group: format!("/aws/lambda/{}", c.name),
            },
            gust_provisioned_concurrency: (record.provisioned_concurrency > 0)
                .then_some(record.provisioned_concurrency),
        }
    }
}

/// `FunctionCodeLocation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCodeLocation {
    pub repository_type: &'static str,
    pub location: String,
}

/// `GetFunctionResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetFunctionResponse {
    pub configuration: FunctionConfiguration,
    pub code: FunctionCodeLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// `ListFunctionsResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub functions: Vec<FunctionConfiguration>,
}

/// `AccountLimit`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    pub total_code_size: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u32,
    pub unreserved_concurrent_executions: u32,
}

/// `AccountUsage`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    pub total_code_size: u64,
    pub function_count: u64,
}

/// `GetAccountSettingsResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetAccountSettingsResponse {
    pub account_limit: AccountLimit,
    pub account_usage: AccountUsage,
}

/// One line of the Gust logs extension.
#[derive(Debug, Serialize)]
pub struct LogEvent {
    pub seq: i64,
    pub ts_ms: i64,
    pub request_id: String,
    pub stream: gust_model::LogStream,
    pub message: String,
}

/// The Gust logs extension's answer.
#[derive(Debug, Serialize)]
pub struct LogEvents {
    pub events: Vec<LogEvent>,
}

/// `Cors` in function URL requests, kept loose (optional members, a signed `MaxAge`) so the
/// handler can answer out-of-range values with Lambda's validation messages.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorsIn {
    pub allow_credentials: Option<bool>,
    pub allow_headers: Option<Vec<String>>,
    pub allow_methods: Option<Vec<String>>,
    pub allow_origins: Option<Vec<String>>,
    pub expose_headers: Option<Vec<String>>,
    pub max_age: Option<i64>,
}

/// The body of `CreateFunctionUrlConfig` and `UpdateFunctionUrlConfig` (`AuthType` is
/// required by the first, optional in the second).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlConfigRequest {
    pub auth_type: Option<String>,
    pub cors: Option<CorsIn>,
    pub invoke_mode: Option<String>,
}

/// `FunctionUrlConfig`, also the create, get and update responses (`CreateFunctionUrlConfig`
/// has no `LastModifiedTime`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlConfigOut {
    pub function_url: String,
    pub function_arn: String,
    pub auth_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    pub creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<String>,
    pub invoke_mode: String,
}

/// `ListFunctionUrlConfigsResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionUrlConfigsResponse {
    pub function_url_configs: Vec<FunctionUrlConfigOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// The Gust APIs extension's list answer (`GET /gust/v1/apis`).
#[derive(Debug, Serialize)]
pub struct ApiList {
    pub apis: Vec<ApiDefinition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_reads_botocore_names() {
        let body = r#"{"FunctionName":"f","Runtime":"python3.12","Role":"arn:aws:iam::000000000000:role/r",
            "Handler":"app.h","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==","S3Bucket":"b"},
            "MemorySize":256,"EphemeralStorage":{"Size":1024},"Environment":{"Variables":{"A":"1"}},
            "GustProvisionedConcurrency":2,"VpcConfig":{"SubnetIds":[]}}"#;
        let r: CreateFunctionRequest = serde_json::from_str(body).expect("parses");
        assert_eq!(r.memory_size, Some(256));
        assert_eq!(r.ephemeral_storage.map(|e| e.size), Some(1024));
        assert_eq!(r.gust_provisioned_concurrency, Some(2));
        let code = r.code.expect("code");
        assert_eq!(code.s3_bucket.as_deref(), Some("b"));
        assert!(code.zip_file.is_some());
    }
}
