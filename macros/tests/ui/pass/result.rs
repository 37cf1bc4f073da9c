//! A handler returning `Result`: `Ok` is quiet, `Err` is posted as a
//! `HandlerError` carrying the handler's name.

use std::sync::Arc;

use shardbus::{HandlerError, State, TypeMux, handler};
use tokio::sync::mpsc;

struct Parse(&'static str);

#[handler]
async fn parse(
    input: Arc<Parse>,
    State(parsed): State<mpsc::UnboundedSender<u32>>,
) -> Result<(), std::num::ParseIntError> {
    parsed.send(input.0.parse()?).ok();
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (parsed_tx, mut parsed) = mpsc::unbounded_channel::<u32>();
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let bus = TypeMux::new().with_state(parsed_tx);
    let _parse = bus.add_handler(parse);
    let _errors = bus.add_handler(move |err: Arc<HandlerError>| {
        let errors_tx = errors_tx.clone();
        async move {
            errors_tx.send(err).ok();
        }
    });

    bus.post(Parse("12")).await.unwrap();
    assert_eq!(parsed.recv().await, Some(12));

    bus.post(Parse("twelve")).await.unwrap();
    let err = errors.recv().await.unwrap();
    assert_eq!(err.handler, format!("{}::parse", module_path!()));
    assert!(!err.panicked);
    assert!(err.message.contains("invalid digit"), "{err}");
}
