//! `hark devices`: audio hosts and their devices, with the names `--device`
//! accepts, default marks, and which ones can be captured as loopback.

use clap::Args as ClapArgs;

use crate::capture::device;

/// Flags of `hark devices` (none yet).
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Prints every available host and its devices.
pub fn run(_args: Args) -> anyhow::Result<()> {
    let hosts = device::list();
    if hosts.is_empty() {
        println!("no audio host available");
    }
    for host in hosts {
        println!("host {}", host.host.name().to_lowercase());
        match host.devices {
            Err(err) => println!("  cannot list devices: {err}"),
            Ok(devices) if devices.is_empty() => println!("  no devices"),
            Ok(devices) => {
                for d in devices {
                    let mut marks = Vec::new();
                    if d.input {
                        marks.push(if d.default_input {
                            "input (default)"
                        } else {
                            "input"
                        });
                    }
                    if d.output {
                        marks.push(if d.default_output {
                            "output (default)"
                        } else {
                            "output"
                        });
                    }
                    if d.loopback {
                        marks.push("loopback");
                    }
                    let description = if d.description.is_empty() || d.description == d.name {
                        String::new()
                    } else {
                        format!("  \"{}\"", d.description)
                    };
                    println!("  {:<40} {}{description}", d.name, marks.join(", "));
                }
            }
        }
    }
    println!(
        "\nUse a name (or a unique part of it) with --device. Loopback devices record what plays."
    );
    Ok(())
}
