//! Status words, mapped losslessly to names (NT4H2421Gx §10.3, Table 23 for the native `91xx`
//! family, ISO/IEC 7816-4 for `9000` and `6xxx`). [`Sw::from_u16`] and [`Sw::to_u16`] round-trip
//! every 16-bit value; what has no name stays [`Sw::Unknown`].

use std::fmt;

macro_rules! status_words {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal; )*) => {
        /// A status word (SW1 SW2) as returned by the chip.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Sw {
            $( $(#[$doc])* $name, )*
            /// Any status word without a name here.
            Unknown(u16),
        }

        impl Sw {
            /// The status for a two-byte SW1SW2 value; codes not listed are [`Sw::Unknown`].
            pub fn from_u16(sw: u16) -> Sw {
                match sw { $( $code => Sw::$name, )* other => Sw::Unknown(other) }
            }
            /// The two-byte SW1SW2 value.
            pub fn to_u16(self) -> u16 {
                match self { $( Sw::$name => $code, )* Sw::Unknown(v) => v }
            }
            /// What the status means, in a few words.
            pub fn description(self) -> &'static str {
                match self { $( Sw::$name => $text, )* Sw::Unknown(_) => "unknown status word" }
            }
        }
    };
}

status_words! {
    /// `9100` OPERATION_OK (native).
    Ok = 0x9100, "successful operation";
    /// `91AF` ADDITIONAL_FRAME: more data follows, or the chip expects another frame.
    AdditionalFrame = 0x91AF, "additional frame expected";
    /// `9190` returned by Read_Sig with the signature.
    SignatureOk = 0x9190, "successful operation (signature)";
    /// `910C` COMMAND_FORMAT_ERROR (listed for Read_Sig).
    CommandFormatError = 0x910C, "command format error";
    /// `910E` OUT_OF_EEPROM_ERROR.
    OutOfEeprom = 0x910E, "insufficient NV memory to complete the command";
    /// `911C` ILLEGAL_COMMAND_CODE.
    IllegalCommand = 0x911C, "command code not supported";
    /// `911E` INTEGRITY_ERROR: CRC or MAC does not match, or invalid padding.
    IntegrityError = 0x911E, "CRC or MAC does not match data, or padding bytes not valid";
    /// `9140` NO_SUCH_KEY.
    NoSuchKey = 0x9140, "invalid key number specified";
    /// `917E` LENGTH_ERROR.
    LengthError = 0x917E, "length of command string invalid";
    /// `919D` PERMISSION_DENIED.
    PermissionDenied = 0x919D, "current configuration or state does not allow the command";
    /// `919E` PARAMETER_ERROR.
    ParameterError = 0x919E, "value of a parameter invalid";
    /// `91AD` AUTHENTICATION_DELAY: too many failed authentications; wait and retry.
    AuthenticationDelay = 0x91AD, "authentication delay: too many failed authentications";
    /// `91AE` AUTHENTICATION_ERROR: wrong key, or not authenticated as required.
    AuthenticationError = 0x91AE, "authentication failed or not authenticated as required";
    /// `91BE` BOUNDARY_ERROR: read or write beyond the file.
    BoundaryError = 0x91BE, "attempt to read or write beyond the file's limits";
    /// `91CA` COMMAND_ABORTED: the previous command was not fully completed.
    CommandAborted = 0x91CA, "previous command was not fully completed";
    /// `91EE` MEMORY_ERROR.
    MemoryError = 0x91EE, "failure when reading or writing non-volatile memory";
    /// `91F0` FILE_NOT_FOUND.
    FileNotFound = 0x91F0, "specified file number does not exist";
    /// `9000` ISO success.
    IsoOk = 0x9000, "successful operation (ISO)";
    /// `6700` wrong length.
    IsoWrongLength = 0x6700, "wrong length (ISO)";
    /// `6982` security status not satisfied.
    IsoSecurityNotSatisfied = 0x6982, "security status not satisfied (ISO)";
    /// `6985` conditions of use not satisfied.
    IsoConditionsNotSatisfied = 0x6985, "conditions of use not satisfied (ISO)";
    /// `6A80` incorrect parameters in the data field.
    IsoWrongData = 0x6A80, "incorrect parameters in the command data field (ISO)";
    /// `6A82` file or application not found.
    IsoFileNotFound = 0x6A82, "file or application not found (ISO)";
    /// `6A86` incorrect P1-P2.
    IsoWrongP1P2 = 0x6A86, "incorrect parameters P1-P2 (ISO)";
    /// `6A87` Lc inconsistent with P1-P2.
    IsoLcInconsistent = 0x6A87, "Lc inconsistent with parameters P1-P2 (ISO)";
    /// `6B00` wrong parameters: offset outside the file.
    IsoWrongOffset = 0x6B00, "wrong parameter P1-P2: offset outside the file (ISO)";
    /// `6C00` wrong Le.
    IsoWrongLe = 0x6C00, "wrong Le field (ISO)";
    /// `6D00` instruction not supported.
    IsoInsNotSupported = 0x6D00, "instruction code not supported (ISO)";
    /// `6E00` class not supported.
    IsoClaNotSupported = 0x6E00, "class not supported (ISO)";
    /// `6581` memory failure.
    IsoMemoryFailure = 0x6581, "memory failure (ISO)";
}

impl Sw {
    /// Success in either family (`9100`, `9000`, `9190`).
    pub fn is_success(self) -> bool {
        matches!(self, Sw::Ok | Sw::IsoOk | Sw::SignatureOk)
    }

    /// The first status byte (SW1).
    pub fn sw1(self) -> u8 {
        (self.to_u16() >> 8) as u8
    }

    /// The second status byte (SW2).
    pub fn sw2(self) -> u8 {
        self.to_u16() as u8
    }
}

impl fmt::Display for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.to_u16(), self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips() {
        for v in 0..=u16::MAX {
            assert_eq!(Sw::from_u16(v).to_u16(), v);
        }
        assert_eq!(Sw::from_u16(0x91AE), Sw::AuthenticationError);
        assert_eq!(Sw::from_u16(0x1234), Sw::Unknown(0x1234));
    }
}
