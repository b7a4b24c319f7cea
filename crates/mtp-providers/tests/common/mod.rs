//! Tiny axum stubs for the client tests: serve a router on 127.0.0.1:0 and record what
//! the client sent.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Multipart;
use axum::http::HeaderMap;

/// Serves `router` on a free loopback port; returns `http://127.0.0.1:PORT`.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

pub fn client() -> reqwest::Client {
    mtp_providers::http::build_client().unwrap()
}

pub fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub parts: Vec<SeenPart>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// Form-encoded body as a map (last value wins).
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn query_map(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn part(&self, name: &str) -> Option<&SeenPart> {
        self.parts.iter().find(|p| p.name == name)
    }

    pub fn part_text(&self, name: &str) -> Option<String> {
        self.part(name)
            .map(|p| String::from_utf8(p.data.to_vec()).unwrap())
    }

    pub fn part_names(&self) -> Vec<String> {
        self.parts.iter().map(|p| p.name.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct SeenPart {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// Shared record of requests.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.0.lock().unwrap().last().cloned().unwrap()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Records a plain request.
    pub fn record(
        &self,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) {
        self.push(Seen {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers: headers.clone(),
            body,
            parts: Vec::new(),
        });
    }

    /// Records a multipart request, part by part.
    pub async fn record_multipart(
        &self,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        mut multipart: Multipart,
    ) {
        let mut parts = Vec::new();
        while let Some(field) = multipart.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let data = field.bytes().await.unwrap();
            parts.push(SeenPart {
                name,
                file_name,
                content_type,
                data,
            });
        }
        self.push(Seen {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers: headers.clone(),
            body: Bytes::new(),
            parts,
        });
    }
}
