use shardbus::handler;

#[handler]
struct OnPing;

fn main() {}
