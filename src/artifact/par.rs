//! Deterministic fan-out over a few threads: results come back in input order, so the output never
//! depends on the number of cores or on scheduling.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Applies `f` to every item on up to `available_parallelism()` (max 8) threads, the calling thread
/// included, when the items' total `weight` reaches `min_parallel_weight`. Threads take small batches
/// from a shared counter, so one thread slowed down by other processes does not hold up the rest;
/// results are put back in input order. Falls back to the calling thread when a thread cannot be spawned.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    min_parallel_weight: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    map_with(items, weight, min_parallel_weight, || (), |_, i, t| f(i, t))
}

/// [`map`] with a scratch value per thread (made by `init`), for buffers worth reusing across items.
/// `f` must not let the scratch value change its result: which items share one is up to scheduling.
pub(crate) fn map_with<T: Sync, R: Send, S>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    min_parallel_weight: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(items.len());
    if threads < 2 || items.iter().map(&weight).sum::<usize>() < min_parallel_weight {
        let mut scratch = init();
        return items
            .iter()
            .enumerate()
            .map(|(i, t)| f(&mut scratch, i, t))
            .collect();
    }
    // About 16 batches per thread: small enough to balance, large enough to keep the counter cold.
    let batch = items.len().div_ceil(threads * 16).max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut scratch = init();
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let start = next.fetch_add(batch, Ordering::Relaxed);
            if start >= items.len() {
                return done;
            }
            let end = (start + batch).min(items.len());
            done.push((
                start,
                (start..end)
                    .map(|i| f(&mut scratch, i, &items[i]))
                    .collect(),
            ));
        }
    };
    let mut batches = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("artifact-build".into())
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        // If no thread could be spawned, this one simply takes every batch.
        let mut all = work();
        for handle in handles {
            match handle.join() {
                Ok(part) => all.extend(part),
                // A panicking `f` re-panics here, as it would have sequentially.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    batches.sort_unstable_by_key(|(start, _)| *start);
    batches.into_iter().flat_map(|(_, part)| part).collect()
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
