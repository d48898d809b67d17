//! A small XML tree for HiLink replies: element names, text and children, nothing else.
//!
//! HiLink firmwares answer flat documents (`<response><SignalIcon>4</SignalIcon>...`) with the
//! odd nested list (`<Messages><Message>...`), and their element names drift in case between
//! firmwares (`simlockStatus`/`SimlockStatus`, `messages`/`Messages`), so lookups ignore ASCII
//! case. Attributes, namespaces and DTDs are ignored. Must never panic on any input.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// Deepest nesting accepted; HiLink documents are three levels deep.
const MAX_DEPTH: usize = 32;

/// One element: its name, its text (entities resolved, untrimmed) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("the document has no element")]
    Empty,
    #[error("the document nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl Element {
    /// An element with a name and nothing in it.
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// Reads the root element of a document; what follows it is ignored.
    pub fn parse(document: &str) -> Result<Element, XmlError> {
        let mut reader = Reader::from_str(document);
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let event = reader
                .read_event()
                .map_err(|err| XmlError::Syntax(err.to_string()))?;
            match event {
                Event::Start(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::TooDeep);
                    }
                    stack.push(Element::new(local_name(start.local_name().as_ref())));
                }
                Event::Empty(start) => {
                    let element = Element::new(local_name(start.local_name().as_ref()));
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::End(_) => {
                    let Some(element) = stack.pop() else {
                        return Err(XmlError::Syntax("an end tag without a start".into()));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::Text(text) => {
                    if let Some(top) = stack.last_mut() {
                        let decoded = text
                            .xml10_content()
                            .map_err(|err| XmlError::Syntax(err.to_string()))?;
                        top.text.push_str(&decoded);
                    }
                }
                Event::CData(data) => {
                    if let Some(top) = stack.last_mut() {
                        let decoded = data
                            .decode()
                            .map_err(|err| XmlError::Syntax(err.to_string()))?;
                        top.text.push_str(&decoded);
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Some(top) = stack.last_mut() {
                        let name = reference
                            .decode()
                            .map_err(|err| XmlError::Syntax(err.to_string()))?;
                        match reference.resolve_char_ref() {
                            Ok(Some(c)) => top.text.push(c),
                            Ok(None) => match resolve_predefined_entity(&name) {
                                Some(text) => top.text.push_str(text),
                                // An entity the document never declared: keep it as written.
                                None => {
                                    top.text.push('&');
                                    top.text.push_str(&name);
                                    top.text.push(';');
                                }
                            },
                            Err(err) => return Err(XmlError::Syntax(err.to_string())),
                        }
                    }
                }
                Event::Eof => {
                    return Err(if stack.is_empty() {
                        XmlError::Empty
                    } else {
                        XmlError::Syntax("the document ends inside an element".into())
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
    }

    /// The first child named `name` (ASCII case ignored).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|it| it.name.eq_ignore_ascii_case(name))
    }

    /// Every child named `name` (ASCII case ignored).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children
            .iter()
            .filter(move |it| it.name.eq_ignore_ascii_case(name))
    }

    /// The trimmed text of the child `name`, if it has any.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|it| it.text.trim())
            .filter(|it| !it.is_empty())
    }

    /// The child `name` read as a number (`None` when missing, empty or not a number).
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.field(name).and_then(|it| it.parse().ok())
    }

    /// The trimmed text of the child `name` as an owned string.
    pub fn string(&self, name: &str) -> Option<String> {
        self.field(name).map(str::to_string)
    }
}

fn local_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_documents_with_entities_and_whitespace() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n<Count>1</Count>\n\
                   <Messages><Message><Content>a &amp; b &lt;3 &#233;</Content><Sca/></Message>\
                   </Messages></response>";
        let root = Element::parse(doc).unwrap();
        assert_eq!(root.name, "response");
        assert_eq!(root.number::<u32>("count"), Some(1));
        let message = root
            .child("messages")
            .and_then(|it| it.child("MESSAGE"))
            .unwrap();
        assert_eq!(message.field("Content"), Some("a & b <3 é"));
        assert_eq!(message.field("Sca"), None);
    }

    #[test]
    fn bad_documents_are_errors() {
        for doc in [
            "",
            "OK",
            "<response>",
            "<a><b></a>",
            "</a>",
            "<a>&unknown</a>",
        ] {
            assert!(Element::parse(doc).is_err(), "{doc:?}");
        }
        assert_eq!(
            Element::parse("<a>&nbsp;</a>").unwrap().text,
            "&nbsp;",
            "an undeclared entity is kept as written"
        );
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(Element::parse(&deep), Err(XmlError::TooDeep));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(doc in ".{0,200}") {
            let _ = Element::parse(&doc);
        }

        #[test]
        fn never_panics_on_tag_soup(parts in proptest::collection::vec(
            proptest::sample::select(vec!["<a>", "</a>", "<b/>", "&amp;", "&#x0;", "<![CDATA[x]]>", "t", "<?x?>", "<!--c-->", "&#99999999;"]),
            0..20,
        )) {
            let _ = Element::parse(&parts.concat());
        }
    }
}
