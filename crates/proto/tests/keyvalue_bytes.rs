//! Byte-exact encoding of `mvccpb` messages, compared with what etcd's
//! gogoproto marshaller emits: fields in tag order, proto3 defaults omitted.

use bytes::Bytes;
use prost::Message;
use stead_proto::mvccpb::{Event, KeyValue, event::EventType};

fn kv_foo_bar() -> KeyValue {
    KeyValue {
        key: Bytes::from_static(b"foo"),
        create_revision: 2,
        mod_revision: 3,
        version: 1,
        value: Bytes::from_static(b"bar"),
        lease: 0,
    }
}

#[test]
fn key_value_encodes_like_etcd() {
    // Each field starts with a tag byte (field_number << 3 | wire_type):
    // wire type 2 (length-delimited) for bytes, 0 (varint) for int64.
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x0a, 0x03, b'f', b'o', b'o', // 1: key, length 3
        0x10, 0x02,                   // 2: create_revision = 2
        0x18, 0x03,                   // 3: mod_revision = 3
        0x20, 0x01,                   // 4: version = 1
        0x2a, 0x03, b'b', b'a', b'r', // 5: value, length 3
        // 6: lease = 0 is the default and is not written.
    ];
    let kv = kv_foo_bar();
    assert_eq!(kv.encode_to_vec(), expected);
    assert_eq!(kv.encoded_len(), expected.len());
    assert_eq!(KeyValue::decode(expected).unwrap(), kv);
}

#[test]
fn negative_int64_is_a_ten_byte_varint() {
    // int64 (not sint64): negative numbers are sign-extended to 64 bits.
    let kv = KeyValue {
        lease: -1,
        ..Default::default()
    };
    assert_eq!(
        kv.encode_to_vec(),
        [
            0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]
    );
}

#[test]
fn event_encodes_like_etcd() {
    let kv = kv_foo_bar();
    let kv_bytes = kv.encode_to_vec();
    let ev = Event {
        r#type: EventType::Delete as i32,
        kv: Some(kv.clone()),
        prev_kv: None,
    };
    let mut expected = vec![0x08, 0x01, 0x12, kv_bytes.len() as u8];
    expected.extend_from_slice(&kv_bytes);
    assert_eq!(ev.encode_to_vec(), expected);

    // PUT is 0, the default: the type field disappears from the wire.
    let put = Event {
        r#type: EventType::Put as i32,
        kv: Some(kv),
        prev_kv: None,
    };
    assert_eq!(put.encode_to_vec()[0], 0x12);
}

#[test]
fn bytes_fields_decode_zero_copy() {
    // `bytes` fields are `bytes::Bytes`; decoding from a `Bytes` buffer slices
    // it instead of copying.
    let buf = Bytes::from(kv_foo_bar().encode_to_vec());
    let kv = KeyValue::decode(buf.clone()).unwrap();
    let key: &Bytes = &kv.key;
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    assert!(range.contains(&(key.as_ptr() as usize)));
    assert!(range.contains(&(kv.value.as_ptr() as usize)));
}
