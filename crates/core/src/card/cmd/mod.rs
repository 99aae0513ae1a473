//! One file per chip command, each headed by its INS, CommMode and datasheet section.
//! Commands are methods on [`crate::card::Card`] (unauthenticated) or
//! [`crate::card::Session`] (EV2 secure messaging).

pub mod authenticate;
pub mod authenticate_lrp;
pub mod change_file_settings;
pub mod change_key;
pub mod get_card_uid;
pub mod get_file_settings;
pub mod get_key_version;
pub mod get_tt_status;
pub mod get_version;
pub mod iso_binary;
pub mod read_data;
pub mod read_sig;
pub mod select;
pub mod set_configuration;
pub mod write_data;
