//! Where a lake sink's files live: one object store for the whole sink (a local directory or
//! an S3 bucket), and the paths of its tables in it.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use url::Url;

use crate::error::{Error, Result};
use crate::project::SinkDef;

/// The sink's object store, rooted where Delta Lake wants it: the bucket for S3, `/` for local
/// files. `prefix` is the sink's `path` inside it.
#[derive(Clone)]
pub struct Store {
    pub objects: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URL of `prefix` (`s3://bucket/prefix`, `file:///dir`): tables are under it.
    pub url: Url,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl Store {
    /// The sink's store, from its `path` and quoted `'s3.*'` properties. A local directory is
    /// created when missing.
    pub fn open(sink: &SinkDef) -> Result<Store> {
        let Some(lake) = &sink.lake else {
            return Err(Error::Config(format!(
                "sink `{}` is not a lake sink",
                sink.name.value
            )));
        };
        let path = lake.path.value.trim();
        let context = |e: &dyn std::fmt::Display| {
            Error::Config(format!(
                "sink `{}`: cannot open path '{path}': {e}",
                sink.name.value
            ))
        };
        if let Some(rest) = path.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(sink.property("s3.region").unwrap_or("us-east-1"));
            if let Some(endpoint) = sink.property("s3.endpoint") {
                // A custom endpoint (SeaweedFS, Ceph, a MinIO) is addressed path-style.
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(endpoint.starts_with("http://"));
            }
            if let Some(allow) = sink.property("s3.allow_http") {
                builder = builder.with_allow_http(allow.eq_ignore_ascii_case("true"));
            }
            if let Some(key) = sink.property("s3.access_key_id") {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = sink.property("s3.secret_access_key") {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(token) = sink.property("s3.session_token") {
                builder = builder.with_token(token);
            }
            let objects = builder.build().map_err(|e| context(&e))?;
            let prefix = Path::from(prefix.trim_matches('/'));
            let url = Url::parse(&format!("s3://{bucket}/{prefix}")).map_err(|e| context(&e))?;
            return Ok(Store {
                objects: Arc::new(objects),
                prefix,
                url,
            });
        }
        let dir = path.strip_prefix("file://").unwrap_or(path);
        std::fs::create_dir_all(dir).map_err(|e| context(&e))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| context(&e))?;
        let url = Url::from_directory_path(&dir).map_err(|()| context(&"not an absolute path"))?;
        let prefix = Path::from_absolute_path(&dir).map_err(|e| context(&e))?;
        Ok(Store {
            objects: Arc::new(LocalFileSystem::new()),
            prefix,
            url,
        })
    }

    /// `relative` (`db/table/...`) under the sink's path.
    pub fn path(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }

    /// The URL of `relative` under the sink's path.
    pub fn url_of(&self, relative: &str) -> Url {
        let mut url = self.url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/{}", relative.trim_matches('/')));
        url
    }
}
