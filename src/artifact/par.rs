//! Deterministic fan-out over a few threads: results come back in input order, so the output never
//! depends on the number of cores or on scheduling.

/// Applies `f` to every item, splitting the items into contiguous runs of roughly equal `weight` and
/// running them on up to `available_parallelism()` (max 8) threads; the calling thread takes the first
/// run. Falls back to the calling thread when a thread cannot be spawned.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    min_parallel_weight: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let total: usize = items.iter().map(&weight).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(items.len());
    if threads < 2 || total < min_parallel_weight {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let per_thread = total.div_ceil(threads);
    let mut bounds = Vec::with_capacity(threads + 1);
    bounds.push(0);
    let mut acc = 0;
    for (i, item) in items.iter().enumerate() {
        acc += weight(item);
        if acc >= per_thread && bounds.len() < threads && i + 1 < items.len() {
            bounds.push(i + 1);
            acc = 0;
        }
    }
    bounds.push(items.len());
    let f = &f;
    let run = move |start: usize, end: usize| -> Vec<R> {
        (start..end).map(|i| f(i, &items[i])).collect()
    };
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(bounds.len());
        for w in bounds.windows(2).skip(1) {
            let (start, end) = (w[0], w[1]);
            let spawned = std::thread::Builder::new()
                .name("artifact-build".into())
                .spawn_scoped(scope, move || run(start, end));
            handles.push((start, end, spawned));
        }
        let mut out = run(bounds[0], bounds[1]);
        for (start, end, spawned) in handles {
            match spawned.map(|h| h.join()) {
                Ok(Ok(part)) => out.extend(part),
                // Spawn failed: do it here. A panicking `f` re-panics here as it would sequentially.
                Err(_) => out.extend(run(start, end)),
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_covers_everything() {
        let items: Vec<usize> = (0..1000).collect();
        let out = super::map(&items, |_| 10, 0, |i, x| (i, *x * 2));
        assert_eq!(out.len(), 1000);
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, &(j, v))| i == j && v == i * 2)
        );
        let few = super::map(&items[..1], |_| 1, 0, |_, x| *x);
        assert_eq!(few, vec![0]);
        let none: Vec<usize> = super::map(&items[..0], |_| 1, 0, |_, x| *x);
        assert!(none.is_empty());
    }
}
