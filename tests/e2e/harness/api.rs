//! The JSON API as the tests call it: one sign-in, one upload (an envelope, a
//! thread or a step with its files), and answers as (status, JSON).

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use super::Server;

/// A response's status and its JSON body (`Null` when it has none).
pub async fn answer(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A multipart upload: `spec` as JSON in the first part, named `part`
/// (`envelope`, `thread` or `step`), then each file as a `file` part.
pub fn upload_form<N: Into<String>>(part: &str, spec: &Value, files: Vec<(N, Vec<u8>)>) -> Form {
    let mut form = Form::new().part(
        part.to_string(),
        Part::text(spec.to_string())
            .mime_str("application/json")
            .unwrap(),
    );
    for (name, bytes) in files {
        form = form.part("file", Part::bytes(bytes).file_name(name.into()));
    }
    form
}

/// For an upload without files.
pub fn no_files() -> Vec<(&'static str, Vec<u8>)> {
    Vec::new()
}

impl Server {
    /// The sign-in request (`POST /api/v1/session`), the one way every test
    /// signs in through the API; an error only when the server is gone.
    async fn session_request(
        &self,
        client: &reqwest::Client,
        id: &str,
        password: &str,
    ) -> reqwest::Result<reqwest::Response> {
        client
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({ "id": id, "password": password }))
            .send()
            .await
    }

    /// Signs in as `id` from `client`: the answer's status and JSON.
    pub async fn post_session(
        &self,
        client: &reqwest::Client,
        id: &str,
        password: &str,
    ) -> (StatusCode, Value) {
        answer(
            self.session_request(client, id, password)
                .await
                .expect("sign in"),
        )
        .await
    }

    /// Signs in from a fresh client; `None` when refused or the server is gone.
    pub async fn sign_in(&self, id: &str, password: &str) -> Option<reqwest::Client> {
        let client = self.client();
        let r = self.session_request(&client, id, password).await.ok()?;
        (r.status() == StatusCode::OK).then_some(client)
    }

    /// `GET path` as `client`: status and JSON.
    pub async fn get_answer(&self, client: &reqwest::Client, path: &str) -> (StatusCode, Value) {
        answer(client.get(self.url(path)).send().await.unwrap()).await
    }

    /// `POST path` with a JSON body as `client`: status and JSON.
    pub async fn post_json(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        answer(client.post(self.url(path)).json(body).send().await.unwrap()).await
    }

    /// Uploads `spec` and `files` to `path` (see [`upload_form`]).
    pub async fn upload<N: Into<String>>(
        &self,
        client: &reqwest::Client,
        path: &str,
        part: &str,
        spec: &Value,
        files: Vec<(N, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let form = upload_form(part, spec, files);
        answer(
            client
                .post(self.url(path))
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Sends an envelope (`POST /api/v1/envelopes`): status and JSON.
    pub async fn send_envelope<N: Into<String>>(
        &self,
        client: &reqwest::Client,
        spec: &Value,
        files: Vec<(N, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        self.upload(client, "/api/v1/envelopes", "envelope", spec, files)
            .await
    }

    /// As [`Server::send_envelope`], for an envelope the server must accept:
    /// the item's ID.
    pub async fn sent_envelope<N: Into<String>>(
        &self,
        client: &reqwest::Client,
        spec: &Value,
        files: Vec<(N, Vec<u8>)>,
    ) -> String {
        let (status, body) = self.send_envelope(client, spec, files).await;
        assert_eq!(status, StatusCode::CREATED, "send: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Opens a thread (`POST /api/v1/threads`), which must be accepted: its ID.
    pub async fn opened_thread<N: Into<String>>(
        &self,
        client: &reqwest::Client,
        spec: &Value,
        files: Vec<(N, Vec<u8>)>,
    ) -> String {
        let (status, body) = self
            .upload(client, "/api/v1/threads", "thread", spec, files)
            .await;
        assert_eq!(status, StatusCode::CREATED, "open a thread: {body}");
        body["thread_id"].as_str().unwrap().to_string()
    }

    /// Takes a step on a thread (`POST /api/v1/threads/{id}/steps`): status and JSON.
    pub async fn take_step<N: Into<String>>(
        &self,
        client: &reqwest::Client,
        thread: &str,
        spec: &Value,
        files: Vec<(N, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        self.upload(
            client,
            &format!("/api/v1/threads/{thread}/steps"),
            "step",
            spec,
            files,
        )
        .await
    }
}

impl Server {
    /// Waits until the delivery worker has delivered every listed thread's
    /// opening step, as `client` sees them in `GET /api/v1/threads`.
    pub async fn threads_delivered(&self, client: &reqwest::Client, ids: &[&str]) {
        super::wait_until(
            &format!("threads {ids:?} to be delivered"),
            std::time::Duration::from_secs(20),
            || async {
                let (_, list) = self.get_answer(client, "/api/v1/threads").await;
                ids.iter()
                    .all(|id| {
                        list.as_array()
                            .and_then(|a| a.iter().find(|t| t["id"] == *id))
                            .is_some_and(|t| t["state"] != "sent")
                    })
                    .then_some(())
            },
        )
        .await;
    }
}
