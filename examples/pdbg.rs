use cpal::traits::{HostTrait, DeviceTrait};
fn main() {
    let host = cpal::host_from_id(cpal::HostId::PulseAudio).unwrap();
    println!("default in: {:?}", host.default_input_device().map(|d| d.id().unwrap().to_string()));
    println!("default out: {:?}", host.default_output_device().map(|d| d.id().unwrap().to_string()));
    match host.input_devices() { Ok(d) => println!("inputs {}", d.count()), Err(e) => println!("inputs err {e}") }
    match host.output_devices() { Ok(d) => println!("outputs {}", d.count()), Err(e) => println!("outputs err {e}") }
}
