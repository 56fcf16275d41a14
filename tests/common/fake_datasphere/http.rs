//! The fake's HTTP side: presigned uploads and downloads, and the IAM token exchange.

use super::*;

impl State {
    /// A PS256 JWT from the registered service account, for this endpoint, unexpired.
    fn jwt_is_valid(&self, jwt: &str) -> bool {
        use base64::Engine;
        let Some((key_id, account, public)) = &self.service_account else {
            return false;
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return false;
        };
        let (Ok(h), Ok(c), Ok(sig)) = (
            b64.decode(header),
            b64.decode(claims),
            b64.decode(signature),
        ) else {
            return false;
        };
        let h: serde_json::Value = serde_json::from_slice(&h).unwrap_or_default();
        let c: serde_json::Value = serde_json::from_slice(&c).unwrap_or_default();
        let now = chrono::Utc::now().timestamp() as u64;
        h["alg"] == "PS256"
            && h["kid"] == key_id.as_str()
            && c["iss"] == account.as_str()
            && c["aud"]
                .as_str()
                .is_some_and(|a| a.ends_with("/iam/v1/tokens"))
            && c["exp"].as_u64().is_some_and(|e| e > now)
            && public
                .pss_verify::<sha2::Sha256>(format!("{header}.{claims}").as_bytes(), &sig)
                .is_ok()
    }
}

/// The HTTP side: PUT /upload/<sha>, GET /download/<sha>, POST /iam/v1/tokens.
pub(super) fn start_http(state: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    state.lock().unwrap().http_url = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            std::thread::spawn(move || serve_http(state, stream));
        }
    });
    base
}

fn serve_http(state: Shared, mut stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, answer) = handle_http(&state, method, path, &body);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n",
            answer.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&answer).is_err() {
            return;
        }
    }
}

fn handle_http(state: &Shared, method: &str, path: &str, body: &[u8]) -> (&'static str, Vec<u8>) {
    let mut state = state.lock().unwrap();
    match (method, path) {
        ("PUT", p) if p.starts_with("/upload/") => {
            state.puts += 1;
            if state.faults.put_503_once && state.put_failures == 0 {
                state.put_failures += 1;
                return ("503 Service Unavailable", b"{}".to_vec());
            }
            let sha = p.trim_start_matches("/upload/").to_string();
            if sha256(body) != sha {
                return (
                    "400 Bad Request",
                    b"{\"message\":\"sha256 mismatch\"}".to_vec(),
                );
            }
            state.blobs.insert(sha, body.to_vec());
            ("200 OK", b"{}".to_vec())
        }
        ("GET", p) if p.starts_with("/download/") => {
            let sha = p.trim_start_matches("/download/");
            match state.served.get(sha) {
                Some(bytes) => ("200 OK", bytes.clone()),
                None => ("404 Not Found", b"{}".to_vec()),
            }
        }
        ("POST", "/iam/v1/tokens") => {
            let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            state.exchanges.push(request.to_string());
            let accepted = request["yandexPassportOauthToken"]
                .as_str()
                .is_some_and(|t| t == OAUTH)
                || request["jwt"]
                    .as_str()
                    .is_some_and(|j| state.jwt_is_valid(j));
            if !accepted {
                return (
                    "401 Unauthorized",
                    b"{\"message\":\"fake: bad credential\"}".to_vec(),
                );
            }
            state.tokens_issued += 1;
            let lifetime = state
                .faults
                .token_lifetime
                .unwrap_or(Duration::from_secs(3600));
            let token = format!("iam-{}", state.tokens_issued);
            let works_for = state.faults.revoke_tokens_after.unwrap_or(lifetime);
            state
                .tokens
                .insert(token.clone(), Instant::now() + works_for);
            let expires = chrono::Utc::now() + chrono::Duration::from_std(lifetime).unwrap();
            let answer =
                serde_json::json!({ "iamToken": token, "expiresAt": expires.to_rfc3339() });
            ("200 OK", answer.to_string().into_bytes())
        }
        _ => ("404 Not Found", b"{}".to_vec()),
    }
}
