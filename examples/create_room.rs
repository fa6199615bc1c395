//! Creates a room on a running webcall server and prints its link.
//!
//! Run with: `cargo run --example create_room -- http://localhost:8000`

use webcall_core::client::{create_room, room_info};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://localhost:8000".to_owned());
    let room = create_room(&server).await?;
    println!("link:    {}", room.url);
    println!("expires: {}", room.expires_at);

    // Anyone can ask how full a room is without joining it.
    let info = room_info(&server, &room.token).await?;
    println!("participants: {}/{}", info.participants, info.capacity);
    Ok(())
}
