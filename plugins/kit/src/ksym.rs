//! Kernel addresses as `function+0xOFF`, from /proc/kallsyms (read once;
//! as root the addresses are real, else all zero and nothing is named).

/// (address, name) of the kernel's text symbols, sorted by address.
#[derive(Debug, Default)]
pub struct Kallsyms {
    syms: Vec<(u64, String)>,
}

impl Kallsyms {
    pub fn parse(text: &str) -> Kallsyms {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
                if !matches!(kind, "t" | "T" | "W" | "w") {
                    return None;
                }
                let a = u64::from_str_radix(addr, 16).ok().filter(|a| *a != 0)?;
                let module = f.next().map(|m| format!(" {m}")).unwrap_or_default();
                Some((a, format!("{name}{module}")))
            })
            .collect();
        syms.sort_by_key(|s| s.0);
        Kallsyms { syms }
    }

    pub fn load() -> Kallsyms {
        Kallsyms::parse(&std::fs::read_to_string("/proc/kallsyms").unwrap_or_default())
    }

    /// [start, end) of each function of the kernel proper (not a module's)
    /// whose name `pick` takes: from its address to the next symbol's.
    pub fn ranges(&self, mut pick: impl FnMut(&str) -> bool) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        for (i, (a, n)) in self.syms.iter().enumerate() {
            if !n.contains(' ') && pick(n) {
                let end = self.syms.get(i + 1).map(|s| s.0).unwrap_or(a + 1);
                v.push((*a, end.max(a + 1)));
            }
        }
        v
    }

    /// `function+0xOFF [module]`, or the address in hex before the first symbol.
    pub fn name(&self, addr: u64) -> String {
        match self.syms.partition_point(|s| s.0 <= addr).checked_sub(1) {
            Some(i) => {
                let (a, n) = &self.syms[i];
                match n.split_once(' ') {
                    Some((f, m)) => format!("{f}+{:#x} {m}", addr - a),
                    None => format!("{n}+{:#x}", addr - a),
                }
            }
            None => format!("{addr:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_the_function_they_are_in() {
        let k = Kallsyms::parse("ffffffff81000000 T _stext\nffffffff81200000 t alloc_pipe_info\nffffffff81200100 D some_data\nffffffffc0000000 t loop_queue_rq\t[loop]\n0000000000000000 T hidden\n");
        assert_eq!(k.name(0xffffffff81200042), "alloc_pipe_info+0x42");
        assert_eq!(k.name(0xffffffff81200200), "alloc_pipe_info+0x200", "data symbols are not functions");
        assert_eq!(k.name(0xffffffffc0000010), "loop_queue_rq+0x10 [loop]");
        assert_eq!(k.name(0x1000), "0x1000");
        assert_eq!(k.ranges(|n| n == "alloc_pipe_info" || n == "_stext"), vec![(0xffffffff81000000, 0xffffffff81200000), (0xffffffff81200000, 0xffffffffc0000000)]);
        assert_eq!(k.ranges(|n| n.starts_with("loop")), vec![], "modules' functions are not the kernel's own");
    }
}
