//! The shop export's columns: Russian headers (English aliases accepted) → fields.

use crate::error::InputError;
use anyhow::Result;
use std::path::Path;

/// Which export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Stock,
    Sales,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Barcode,
    Artist,
    Album,
    Cover,
    Price,
    ReleaseType,
    RecordingYear,
    ReleaseYear,
    Style,
    Created,
    Sold,
    Copies,
}

pub const FIELD_COUNT: usize = 12;

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Barcode,
        Field::Artist,
        Field::Album,
        Field::Cover,
        Field::Price,
        Field::ReleaseType,
        Field::RecordingYear,
        Field::ReleaseYear,
        Field::Style,
        Field::Created,
        Field::Sold,
        Field::Copies,
    ];

    /// The shop export's header, used in messages.
    pub fn header(self) -> &'static str {
        self.aliases()[0]
    }

    /// Accepted headers, compared after trimming, lower-casing and collapsing spaces.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Barcode => &["Штрихкод", "barcode", "ean"],
            Field::Artist => &["Исполнитель", "artist"],
            Field::Album => &["Альбом", "album", "title"],
            Field::Cover => &["Конверт", "cover", "cover_type", "cover type", "condition"],
            Field::Price => &["Цена, руб.", "цена", "цена, руб", "price", "price, rub"],
            Field::ReleaseType => &["Тип", "release_type", "release type", "type"],
            Field::RecordingYear => &["Год записи", "recording_year", "recording year"],
            Field::ReleaseYear => &["Год выпуска", "release_year", "release year"],
            Field::Style => &["Стиль", "style", "genre"],
            Field::Created => &[
                "Дата создания",
                "дата добавления",
                "created_date",
                "created",
                "date added",
            ],
            Field::Sold => &["Дата заказа", "sold_date", "sold", "order date"],
            Field::Copies => &["Экземпляры", "count", "copies", "quantity"],
        }
    }

    fn required(self, role: Role) -> bool {
        match self {
            // Without a count column every stock row is one copy (said in the summary).
            Field::Copies => false,
            Field::Sold => role == Role::Sales,
            _ => true,
        }
    }
}

fn normalise_header(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Column positions of the fields in one file. A field named by two columns (an export
/// that repeats «Дата заказа») is read from both, and a row where they disagree is an
/// error rather than a silent choice of the first.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    index: [Option<usize>; FIELD_COUNT],
    copies: Vec<(Field, usize)>,
}

impl ColumnMap {
    /// Whether `header` looks like the export's header row (it names the required
    /// fields), to find a header under title lines.
    pub fn is_header(header: &[String], role: Role) -> bool {
        let normalised: Vec<String> = header.iter().map(|h| normalise_header(h)).collect();
        Field::ALL.iter().all(|field| {
            !field.required(role)
                || normalised
                    .iter()
                    .any(|h| field.aliases().iter().any(|a| normalise_header(a) == *h))
        })
    }

    pub fn from_header(path: &Path, header: &[String], role: Role) -> Result<Self> {
        let normalised: Vec<String> = header.iter().map(|h| normalise_header(h)).collect();
        let mut index = [None; FIELD_COUNT];
        let mut copies = Vec::new();
        for (slot, field) in index.iter_mut().zip(Field::ALL) {
            let mut positions = normalised
                .iter()
                .enumerate()
                .filter(|(_, h)| field.aliases().iter().any(|a| normalise_header(a) == **h))
                .map(|(i, _)| i);
            *slot = positions.next();
            copies.extend(positions.map(|i| (field, i)));
        }
        let missing: Vec<&str> = Field::ALL
            .iter()
            .zip(&index)
            .filter(|(field, found)| found.is_none() && field.required(role))
            .map(|(field, _)| field.header())
            .collect();
        if !missing.is_empty() {
            let role_name = match role {
                Role::Stock => "stock snapshot",
                Role::Sales => "sales export",
            };
            return Err(InputError::in_file(
                path,
                format!(
                    "row 1 (header): missing required column(s) of a {role_name}: {}; found: {}",
                    missing.join(", "),
                    header.join(", ")
                ),
            )
            .into());
        }
        Ok(Self { index, copies })
    }

    pub fn position(&self, field: Field) -> Option<usize> {
        self.index[field as usize]
    }

    /// How many cells a row needs to hold every required field of `role`.
    pub fn required_width(&self, role: Role) -> usize {
        Field::ALL
            .iter()
            .filter(|f| f.required(role))
            .filter_map(|&f| self.position(f))
            .max()
            .map_or(0, |p| p + 1)
    }

    /// Further columns naming an already mapped field: (field, position).
    pub fn duplicates(&self) -> &[(Field, usize)] {
        &self.copies
    }

    pub fn has(&self, field: Field) -> bool {
        self.position(field).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_russian_and_english_headers() {
        let header: Vec<String> = [
            "\u{feff}Штрихкод",
            " Исполнитель",
            "ALBUM",
            "Конверт",
            "Цена,  руб.",
            "Тип",
            "Год записи",
            "Год выпуска",
            "Стиль",
            "Дата добавления",
            "Дата заказа",
            "Лишнее",
        ]
        .map(String::from)
        .to_vec();
        let map = ColumnMap::from_header(Path::new("s.csv"), &header, Role::Sales).unwrap();
        assert_eq!(map.position(Field::Barcode), Some(0));
        assert_eq!(map.position(Field::Album), Some(2));
        assert_eq!(map.position(Field::Price), Some(4));
        assert_eq!(map.position(Field::Created), Some(9));
        assert_eq!(map.position(Field::Copies), None);
        assert!(map.duplicates().is_empty());
        let mut twice = header.clone();
        twice.push("дата заказа".into());
        let map = ColumnMap::from_header(Path::new("s.csv"), &twice, Role::Sales).unwrap();
        assert_eq!(map.duplicates(), &[(Field::Sold, 12)]);
        assert!(ColumnMap::is_header(&header, Role::Sales));
        assert!(!ColumnMap::is_header(
            &["Отчёт за октябрь".to_string()],
            Role::Sales
        ));
    }

    #[test]
    fn names_missing_columns() {
        let header = vec!["Исполнитель".to_string(), "Альбом".to_string()];
        let err = ColumnMap::from_header(Path::new("s.csv"), &header, Role::Sales).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("s.csv") && text.contains("Дата заказа") && text.contains("Цена, руб."),
            "{text}"
        );
    }
}
