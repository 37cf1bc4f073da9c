use shardbus::TypeMux;

struct Ping;

// Neither `async` nor taking the event as `Arc<Ping>`, and not marked
// `#[handler]`: the error comes from the `Handler` bound on `add_handler`.
fn on_ping(_ping: u32) {}

#[tokio::main]
async fn main() {
    let bus = TypeMux::new();
    let _sub = bus.add_handler::<Ping, _, _>(on_ping);
}
