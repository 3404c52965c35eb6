//! A minimal Rallypoint player: gets a token from a dev-mode server, joins a room, walks
//! right for three seconds while timing pings, then leaves.
//!
//! ```sh
//! cargo run --release                                   # a dev-mode server, in one terminal
//! cargo run -p rallypoint-client --example play         # in another
//! cargo run -p rallypoint-client --example play -- wss://game.example.com/play TOKEN
//! ```

use std::time::Duration;

use rallypoint_client::{Endpoint, Kind, Received, Request, TokenIn, Trust};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::Input;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or("ws://127.0.0.1:7777/play".into());
    let endpoint = Endpoint::resolve(&url, &Trust::WebPkiRoots).await?;
    let token = match args.next() {
        Some(token) => token,
        None => endpoint.dev_token("example-player", "Example").await?,
    };

    let request = Request::new([Subprotocol::V1MsgPack, Subprotocol::V1Json])
        .token(&token, TokenIn::Header)
        .room("example");
    let mut session = endpoint.join(&request).await?;
    let welcome = session
        .welcome()
        .expect("join waits for the welcome")
        .clone();
    println!(
        "joined {} as #{} over {} ({} Hz)",
        welcome.room,
        welcome.you,
        session.protocol(),
        welcome.tick_rate
    );

    let mut tick =
        tokio::time::interval(Duration::from_secs(1) / u32::from(welcome.tick_rate.max(1)));
    let mut ents: Vec<Entity> = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        tokio::select! {
            received = session.recv() => match received? {
                Received::Message(m) => match m.kind() {
                    Kind::Snap => {
                        let head = m.snapshot_into(&mut ents)?;
                        let me = ents.iter().find_map(|e| match *e {
                            Entity::Player { id, x, y, .. } if id == welcome.you => Some((x, y)),
                            _ => None,
                        });
                        if head.tick % 30 == 0 {
                            println!("tick {} ack {} at {me:?}", head.tick, head.ack);
                        }
                    }
                    Kind::Pong => println!("rtt {:?}", m.rtt()),
                    _ => {}
                },
                Received::Closed(close) => {
                    println!("closed by the server: {} {:?}", close.code, close.error);
                    return Ok(());
                }
            },
            _ = tick.tick() => {
                session.queue_input(Input { seq: 0, mx: 1.0, my: 0.0, aim: 0.0, fire: false, view: None })?;
                if session.last_seq() % 30 == 1 {
                    session.queue_ping()?;
                }
                session.flush().await?;
            }
        }
    }
    let close = tokio::time::timeout(Duration::from_secs(1), session.close(1000, "bye")).await??;
    println!(
        "{} inputs sent, {} acknowledged; closed with {}",
        session.last_seq(),
        session.acked(),
        close.code
    );
    Ok(())
}
