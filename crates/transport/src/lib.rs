//! flagwire's HTTP transport: a tower `Service` stack on hyper and rustls.
