//! The `table` format: etcdctl's tablewriter tables for member and endpoint
//! lists. Key-value responses have no table form (the dispatcher reports
//! that).

use stead_proto::etcdserverpb::MemberListResponse;

use super::{
    EndpointHealth, EndpointStatus, HEALTH_HEADER, MEMBER_HEADER, STATUS_HEADER, health_rows,
    member_rows, status_rows,
};
use crate::layout::Table;

fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new(header);
    for row in rows {
        table.append(&row);
    }
    table.render()
}

pub fn member_list(resp: &MemberListResponse) -> String {
    render(&MEMBER_HEADER, member_rows(resp))
}

pub fn endpoint_health(list: &[EndpointHealth]) -> String {
    render(&HEALTH_HEADER, health_rows(list))
}

pub fn endpoint_status(list: &[EndpointStatus]) -> String {
    render(&STATUS_HEADER, status_rows(list))
}
