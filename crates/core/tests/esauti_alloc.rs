//! Validation and registry look-ups perform no heap allocation, measured with the counting
//! global allocator.

use std::hint::black_box;

use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_core::esauti::{EventEnvelope, EventType};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

#[test]
fn validating_a_valid_envelope_and_looking_up_types_do_not_allocate() {
    let event = EventEnvelope::builder(EventType::OrderCreated)
        .customer_id("cus_1")
        .property("currency", "USD")
        .property("value", 0)
        .build()
        .unwrap();
    let custom = EventEnvelope::builder("invoice.exported").build().unwrap();
    let ((), allocations) = count_allocations(|| {
        for _ in 0..1000 {
            black_box(&event).validate().unwrap();
            black_box(&custom).validate().unwrap();
            let ty = EventType::lookup(black_box("order.created")).unwrap();
            black_box(ty.required_properties());
            black_box(ty.group());
            black_box(EventType::lookup(black_box("no.such_type")));
        }
    });
    assert_eq!(allocations, 0);
    // A failing validation allocates its error, naturally.
    let (result, allocations) = count_allocations(|| {
        EventEnvelope::builder(EventType::OrderCreated)
            .customer_id("c")
            .build()
    });
    assert!(result.is_err());
    assert!(allocations > 0);
}
