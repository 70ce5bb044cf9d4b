//! Which trial runs where: a fixed number of slots per device, filled so that devices share
//! the load, with a per-trial cap on how many trials may share its device (for OOM retries).

use std::fmt;
use std::str::FromStr;

/// A device trials can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// A CUDA device by its index on this machine.
    Cuda(usize),
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("unknown device `{other}`: use cpu, cuda:0, cuda:1, ...")),
        }
    }
}

/// Parses `--devices`: `cpu` or a comma-separated list of CUDA devices (`auto` is resolved by
/// the caller, which knows what hardware exists).
pub fn parse_device_list(s: &str) -> Result<Vec<DeviceSpec>, String> {
    let devices: Vec<DeviceSpec> = s.split(',').map(str::parse).collect::<Result<_, _>>()?;
    if devices.is_empty() {
        return Err("no device given".into());
    }
    if devices.contains(&DeviceSpec::Cpu) && devices.len() > 1 {
        return Err("use either cpu or CUDA devices, not both".into());
    }
    for (i, d) in devices.iter().enumerate() {
        if devices[..i].contains(d) {
            return Err(format!("{d} is listed twice"));
        }
    }
    Ok(devices)
}

/// Resolves `--devices auto|cpu|cuda:...` against what this binary and machine offer: `auto`
/// is every CUDA device, or the CPU when there is none.
pub fn resolve_devices(arg: &str) -> anyhow::Result<Vec<DeviceSpec>> {
    use crate::devices::Cuda;
    let cuda = crate::devices::cuda();
    if arg == "auto" {
        let gpus = cuda.devices();
        return Ok(if gpus.is_empty() {
            vec![DeviceSpec::Cpu]
        } else {
            gpus.iter().map(|d| DeviceSpec::Cuda(d.index)).collect()
        });
    }
    let devices = parse_device_list(arg).map_err(|e| anyhow::anyhow!("--devices {arg}: {e}"))?;
    for d in &devices {
        if let DeviceSpec::Cuda(i) = d {
            match &cuda {
                Cuda::NotBuilt => anyhow::bail!(
                    "--devices {arg}: this binary was built without CUDA (see scripts/build-cuda.sh)"
                ),
                Cuda::NoDevice(why) => anyhow::bail!("--devices {arg}: no CUDA device: {why}"),
                Cuda::Devices(list) if !list.iter().any(|g| g.index == *i) => anyhow::bail!(
                    "--devices {arg}: there is no {d} (this machine has {} CUDA devices)",
                    list.len()
                ),
                _ => {}
            }
        }
    }
    Ok(devices)
}

/// A place where one trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The device.
    pub device: DeviceSpec,
    /// Which of the device's slots.
    pub index: usize,
}

/// The slots of every device and which are taken.
#[derive(Debug, Clone)]
pub struct SlotPool {
    devices: Vec<DeviceSpec>,
    per_device: usize,
    /// For each device, the neighbour caps of the trials running there.
    running: Vec<Vec<(usize, usize)>>,
}

impl SlotPool {
    /// `per_device` slots on each of `devices`.
    pub fn new(devices: &[DeviceSpec], per_device: usize) -> Self {
        assert!(per_device >= 1 && !devices.is_empty());
        Self {
            devices: devices.to_vec(),
            per_device,
            running: vec![Vec::new(); devices.len()],
        }
    }

    /// Total number of slots.
    pub fn capacity(&self) -> usize {
        self.devices.len() * self.per_device
    }

    /// Trials running now.
    pub fn busy(&self) -> usize {
        self.running.iter().map(Vec::len).sum()
    }

    /// The device a trial that tolerates at most `cap` trials on its device would get: the
    /// least loaded one that respects its cap and the caps of the trials already there.
    fn fitting_device(&self, cap: usize) -> Option<usize> {
        let cap = cap.clamp(1, self.per_device);
        (0..self.devices.len())
            .filter(|&d| {
                let here = &self.running[d];
                let limit = here
                    .iter()
                    .map(|&(_, c)| c)
                    .min()
                    .unwrap_or(self.per_device)
                    .min(cap);
                here.len() < limit
            })
            .min_by_key(|&d| (self.running[d].len(), d))
    }

    /// True when a trial capped at `cap` could start now.
    pub fn has_room(&self, cap: usize) -> bool {
        self.fitting_device(cap).is_some()
    }

    /// Takes a slot for a trial that tolerates at most `cap` trials on its device (itself
    /// included; `per_device` normally). None when no slot fits now.
    pub fn acquire(&mut self, cap: usize) -> Option<Slot> {
        let cap = cap.clamp(1, self.per_device);
        let best = self.fitting_device(cap)?;
        let index = (0..self.per_device)
            .find(|i| !self.running[best].iter().any(|&(s, _)| s == *i))
            .expect("a device below its limit has a free slot");
        self.running[best].push((index, cap));
        Some(Slot {
            device: self.devices[best],
            index,
        })
    }

    /// Gives a slot back.
    pub fn release(&mut self, slot: Slot) {
        if let Some(d) = self.devices.iter().position(|&x| x == slot.device) {
            self.running[d].retain(|&(s, _)| s != slot.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn four_gpus() -> Vec<DeviceSpec> {
        (0..4).map(DeviceSpec::Cuda).collect()
    }

    #[test]
    fn fills_every_device_once_before_doubling_up() {
        let mut pool = SlotPool::new(&four_gpus(), 2);
        assert_eq!(pool.capacity(), 8);
        let first: Vec<_> = (0..4).map(|_| pool.acquire(2).unwrap()).collect();
        assert_eq!(
            first.iter().map(|s| s.device).collect::<Vec<_>>(),
            four_gpus(),
            "one trial per GPU first"
        );
        let second: Vec<_> = (0..4).map(|_| pool.acquire(2).unwrap()).collect();
        assert!(second.iter().all(|s| s.index == 1));
        assert_eq!(pool.acquire(2), None, "8 slots, never a ninth");
        assert_eq!(pool.busy(), 8);
        pool.release(second[2]);
        assert_eq!(
            pool.acquire(2),
            Some(Slot {
                device: DeviceSpec::Cuda(2),
                index: 1
            })
        );
    }

    #[test]
    fn a_trial_capped_at_one_runs_alone_and_keeps_others_away() {
        let mut pool = SlotPool::new(&four_gpus()[..2], 2);
        let a = pool.acquire(2).unwrap(); // cuda:0
        let alone = pool.acquire(1).unwrap();
        assert_eq!(alone.device, DeviceSpec::Cuda(1), "goes to the empty GPU");
        let c = pool.acquire(2).unwrap();
        assert_eq!(
            c.device,
            DeviceSpec::Cuda(0),
            "not next to the capped trial"
        );
        assert_eq!(pool.acquire(2), None);
        assert_eq!(pool.acquire(1), None, "no empty GPU left");
        pool.release(a);
        pool.release(c);
        assert_eq!(pool.acquire(1).unwrap().device, DeviceSpec::Cuda(0));
    }

    #[test]
    fn cpu_slots_are_one_per_trial() {
        let mut pool = SlotPool::new(&[DeviceSpec::Cpu], 2);
        let a = pool.acquire(2).unwrap();
        let b = pool.acquire(2).unwrap();
        assert_eq!((a.index, b.index), (0, 1));
        assert!(pool.acquire(2).is_none());
    }

    #[test]
    fn device_lists_parse_and_reject_nonsense() {
        assert_eq!(
            parse_device_list("cuda:0,cuda:2").unwrap(),
            vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(2)]
        );
        assert_eq!(parse_device_list("cpu").unwrap(), vec![DeviceSpec::Cpu]);
        assert!(parse_device_list("cpu,cuda:0").is_err());
        assert!(parse_device_list("cuda:0,cuda:0").is_err());
        assert!(parse_device_list("gpu7").is_err());
    }
}
