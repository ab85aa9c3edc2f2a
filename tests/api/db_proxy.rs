//! A TCP proxy between a server and the test PostgreSQL server, which the test can cut (close the
//! port and every connection, as a stopped server does), restore, stall (keep every connection
//! open and accept new ones, but pass no byte either way: a partition, a stuck primary) and
//! resume. Nothing else shares the proxy, so nothing else sees the outage.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use tokenbroker::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::postgres_admin_url;

pub(crate) struct DatabaseProxy {
    port: u16,
    upstream: SocketAddr,
    /// The accept loop and every pipe it started.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    stalled: watch::Sender<bool>,
}

impl DatabaseProxy {
    pub(crate) async fn to_postgres() -> Self {
        let admin = url::Url::parse(&postgres_admin_url()).unwrap();
        let upstream =
            tokio::net::lookup_host((admin.host_str().unwrap(), admin.port().unwrap_or(5432)))
                .await
                .unwrap()
                .next()
                .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = Self {
            port,
            upstream,
            tasks: Arc::default(),
            stalled: watch::Sender::new(false),
        };
        proxy.restore().await;
        proxy
    }

    /// Points `settings` at the database through this proxy.
    pub(crate) fn route(&self, settings: &mut Settings) {
        let mut url = url::Url::parse(settings.database_url.expose_secret()).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        settings.database_url = SecretString::from(url.to_string());
    }

    /// Listens again; every new connection is piped to PostgreSQL.
    pub(crate) async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let upstream = self.upstream;
        let tasks = self.tasks.clone();
        let stalled = self.stalled.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let mut pipes = tasks.lock().unwrap();
                pipes.push(tokio::spawn(pipe(
                    client_read,
                    server_write,
                    stalled.subscribe(),
                )));
                pipes.push(tokio::spawn(pipe(
                    server_read,
                    client_write,
                    stalled.subscribe(),
                )));
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the port and every connection through it; returns once they are all closed.
    pub(crate) async fn cut(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Stops passing bytes, both ways, on every connection, old and new; nothing is closed.
    pub(crate) fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Passes bytes again, starting with what waited.
    pub(crate) fn resume(&self) {
        self.stalled.send_replace(false);
    }
}

/// Copies one direction, holding everything back while the proxy is stalled.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stalled: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // Stalled while waiting for bytes: stop reading (reads are cancel-safe).
            _ = stalled.wait_for(|stalled| *stalled) => continue,
        };
        let Ok(count) = read else { return };
        if count == 0 {
            let _ = to.shutdown().await;
            return;
        }
        // Bytes read just before a stall are held until it ends.
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}
