//! Which container a process runs in, from its `/proc/PID/cgroup` lines: GPU jobs on shared
//! servers often run in Docker, Podman or Kubernetes, and their pids then mean nothing to a
//! person reading the process list.

/// The container named by `cgroup` (the lines of `/proc/PID/cgroup`, newline- or
/// space-separated), as `RUNTIME ID12` (`docker 1a2b3c4d5e6f`, `podman …`, `containerd …`,
/// `kubernetes pod …`, `lxc NAME`); `None` for a process on the host.
pub(crate) fn from_cgroup(cgroup: &str) -> Option<String> {
    for entry in cgroup.split_whitespace() {
        // `0::/system.slice/docker-ID.scope`, `12:memory:/docker/ID`, `…/libpod-ID.scope`,
        // `…/cri-containerd-ID.scope`, `/kubepods/burstable/podUID/ID`, `/lxc/NAME`.
        let path = entry.splitn(3, ':').nth(2).unwrap_or(entry);
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate().rev() {
            let part = part.trim_end_matches(".scope");
            for (prefix, runtime) in [
                ("docker-", "docker"),
                ("libpod-conmon-", "podman"),
                ("libpod-", "podman"),
                ("cri-containerd-", "containerd"),
                ("crio-", "cri-o"),
            ] {
                if let Some(id) = part.strip_prefix(prefix).filter(|id| is_id(id)) {
                    return Some(format!("{runtime} {}", short(id)));
                }
            }
            let parent = i.checked_sub(1).and_then(|j| parts.get(j)).copied();
            if is_id(part) {
                match parent {
                    Some("docker") => return Some(format!("docker {}", short(part))),
                    Some(p) if p.starts_with("pod") || parts.contains(&"kubepods") => {
                        return Some(format!("kubernetes {}", short(part)));
                    }
                    _ => {}
                }
            }
            if parent == Some("lxc") || parent == Some("lxc.payload") {
                return Some(format!("lxc {part}"));
            }
            if let Some(name) = part.strip_prefix("lxc.payload.") {
                return Some(format!("lxc {name}"));
            }
        }
    }
    None
}

fn is_id(s: &str) -> bool {
    s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f9a1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    #[test]
    fn runtimes_are_recognised() {
        // cgroup v2 with the systemd driver (Docker ≥ 20.10 on Debian 12, Ubuntu 22.04).
        assert_eq!(
            from_cgroup(&format!("0::/system.slice/docker-{ID}.scope")).as_deref(),
            Some("docker 4f9a1c2b3d4e")
        );
        // cgroup v1 / cgroupfs driver.
        assert_eq!(
            from_cgroup(&format!("12:memory:/docker/{ID} 11:cpu:/docker/{ID}")).as_deref(),
            Some("docker 4f9a1c2b3d4e")
        );
        assert_eq!(
            from_cgroup(&format!("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container")).as_deref(),
            Some("podman 4f9a1c2b3d4e")
        );
        assert_eq!(
            from_cgroup(&format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-{ID}.scope")).as_deref(),
            Some("containerd 4f9a1c2b3d4e")
        );
        assert_eq!(
            from_cgroup(&format!(
                "0::/kubepods/burstable/pod0f1e2d3c-aaaa-bbbb-cccc-1234567890ab/{ID}"
            ))
            .as_deref(),
            Some("kubernetes 4f9a1c2b3d4e")
        );
        assert_eq!(
            from_cgroup("0::/lxc.payload.build1").as_deref(),
            Some("lxc build1")
        );
    }

    #[test]
    fn host_processes_are_not_containers() {
        for host in [
            "0::/user.slice/user-1000.slice/session-3.scope",
            "0::/system.slice/ssh.service",
            "0::/",
            "",
        ] {
            assert_eq!(from_cgroup(host), None, "{host}");
        }
    }
}
