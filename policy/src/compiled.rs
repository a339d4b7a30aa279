//! Compiled policy evaluation: the bundle's Cedar policies, translated once when the bundle
//! loads into small expression trees over Mesh OS's own typed request, so that deciding a
//! request needs neither Cedar entities and context nor Cedar's generic interpreter (which
//! clones, allocates and hashes its way through every policy of a slice).
//!
//! Cedar stays the reference and the fallback:
//! - A policy is compiled from its Cedar syntax tree (`Policy::to_pst`). Anything outside the
//!   supported subset makes it not compilable, and every slice holding such a policy is
//!   evaluated by Cedar (decided once at load; nothing is logged per request).
//! - When a compiled policy errors while evaluating, the compiled set reports the error instead
//!   of a decision; the engine then asks Cedar, so the fail-closed deny quotes Cedar's own error.
//!
//! Supported subset: the scope (`principal`/`resource` `==`, `in`, `is`, `is … in` an entity;
//! `action` `==` or `in` a list), `when`/`unless`, literals (bool, long, string, entity, sets of
//! literals), `principal`/`action`/`resource`, `context.attr` and `context has attr`, `!`, `-`,
//! `&&`, `||`, `if … then … else`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `in`,
//! `is`, `like`, `.contains`, `.containsAll`, `.containsAny` and `.isEmpty`.
//! Not compiled: extension functions (ip, decimal, datetime), records, tags, entity attributes,
//! nested `has` paths, sets built from non-literal elements, template slots.
//!
//! Cedar semantics mirrored (cedar-policy-core's evaluator): a policy's condition is
//! `principal-scope && action-scope && resource-scope && when… && !unless…`, left to right;
//! `&&`, `||` and `if` evaluate only what they need; every other operator evaluates all its
//! operands. Errors: reading an absent context attribute, an operand of the wrong type
//! (including a non-boolean condition), and `i64` overflow in `+`, `-`, `*` and negation.
//! `==` never errors (values of different types are unequal; sets compare as sets).
//! `A in B` is true when `A` is `B` or `B` is an ancestor of `A` in the request's entity chain
//! (Agent in Team in Region in Tenant); a set on the right must hold only entities.
//! Decision: deny if any forbid is satisfied; else allow if any permit is; else deny. The
//! determining policies are the satisfied forbids on a deny, the satisfied permits on an allow.

use std::collections::BTreeSet;
use std::sync::Arc;

use cedar_policy::pst;
use cedar_policy::{Policy, PolicyId};

/// Cedar entity types of the request the engine builds; both evaluation paths use these names.
pub(crate) mod entity_type {
    pub(crate) const TENANT: &str = "MeshOS::Tenant";
    pub(crate) const REGION: &str = "MeshOS::Region";
    pub(crate) const TEAM: &str = "MeshOS::Team";
    pub(crate) const AGENT: &str = "MeshOS::Agent";
    pub(crate) const OPERATION: &str = "MeshOS::Operation";
    pub(crate) const ACTION: &str = "MeshOS::Action";
}

/// The id of the one action the schema defines (`MeshOS::Action::"act"`).
pub(crate) const ACTION_ID: &str = "act";

/// Deeper expressions are left to Cedar rather than risk the evaluator's recursion.
const MAX_DEPTH: usize = 128;

/// One context attribute's value as the engine supplies it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CtxValue<'a> {
    Bool(bool),
    Long(i64),
    Str(&'a str),
    Set(StrSet<'a>),
}

/// A `Set<String>` of the context, borrowed from wherever the engine holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StrSet<'a> {
    Owned(&'a [String]),
    Borrowed(&'a [&'a str]),
}

impl<'a> StrSet<'a> {
    fn is_empty(self) -> bool {
        match self {
            StrSet::Owned(s) => s.is_empty(),
            StrSet::Borrowed(s) => s.is_empty(),
        }
    }

    fn any(self, mut f: impl FnMut(&'a str) -> bool) -> bool {
        match self {
            StrSet::Owned(s) => s.iter().any(|x| f(x)),
            StrSet::Borrowed(s) => s.iter().any(|x| f(x)),
        }
    }

    /// Every element, as `String`s: for building Cedar's context from the same data.
    pub(crate) fn to_strings(self) -> Vec<String> {
        match self {
            StrSet::Owned(s) => s.to_vec(),
            StrSet::Borrowed(s) => s.iter().map(|x| (*x).to_string()).collect(),
        }
    }
}

/// The request as the compiled policies see it: the agent's entity chain, the operation, and
/// the context attributes in the order of the attribute list the set was compiled against
/// (`None`: the attribute is absent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a> {
    pub tenant: &'a str,
    pub region: Option<&'a str>,
    pub team: Option<&'a str>,
    /// The agent id within the tenant; its Cedar entity id is `tenant/agent`.
    pub agent: &'a str,
    pub operation: &'a str,
    pub context: &'a [Option<CtxValue<'a>>],
}

/// Why a policy could not be compiled (it is then evaluated by Cedar).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CompileError {
    #[error("cedar could not produce the policy's syntax tree: {0}")]
    SyntaxTree(String),
    #[error("not supported by the compiled evaluator: {0}")]
    Unsupported(String),
}

/// Why a compiled policy could not be evaluated; Cedar would report an error for it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EvalError {
    #[error("the context has no such attribute")]
    MissingAttribute,
    #[error("an operand has the wrong type")]
    Type,
    #[error("integer overflow")]
    Overflow,
}

/// A policy that errored while being evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy} errored: {error}")]
pub(crate) struct PolicyError {
    pub policy: PolicyId,
    pub error: EvalError,
}

/// The decision and the policies that determined it (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer<'s> {
    pub allow: bool,
    pub determining: Vec<&'s PolicyId>,
}

/// What a slice's key fixes about every request the slice decides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceFacts<'k> {
    /// `Some(t)`: the tenant is `t`, which has a policy folder. `None`: the tenant is one
    /// without a folder, so none of `tenant_folders`.
    pub tenant: Option<&'k str>,
    pub tenant_folders: &'k BTreeSet<String>,
    pub region: Option<&'k str>,
    pub team: Option<&'k str>,
}

/// One compiled policy.
#[derive(Debug, Clone)]
pub(crate) struct CompiledPolicy {
    id: PolicyId,
    forbid: bool,
    /// The scope constraints and then the clauses, all of which must hold; evaluated in order
    /// and only until one fails, like Cedar's `&&` chain.
    conjuncts: Vec<Node>,
}

impl CompiledPolicy {
    /// This policy for the requests of one slice: constant conjuncts, and `principal in`
    /// conjuncts the slice's key decides, are dropped when true; when one is false and nothing
    /// before it remains, the policy can never match (nor error, since nothing after a false
    /// conjunct is evaluated) and is left out (`None`).
    pub(crate) fn specialize(&self, facts: &SliceFacts<'_>) -> Option<CompiledPolicy> {
        let mut conjuncts = Vec::with_capacity(self.conjuncts.len());
        for part in &self.conjuncts {
            let known = match part {
                Node::Const(Const::Bool(b)) => Some(*b),
                _ => principal_in_known(part, facts),
            };
            match known {
                Some(true) => {}
                // Everything before was dropped as true: nothing can error.
                Some(false) if conjuncts.is_empty() => return None,
                Some(false) => {
                    conjuncts.push(Node::Const(Const::Bool(false)));
                    break;
                }
                None => conjuncts.push(part.clone()),
            }
        }
        Some(CompiledPolicy {
            id: self.id.clone(),
            forbid: self.forbid,
            conjuncts,
        })
    }

    fn satisfied(&self, req: &RequestView<'_>) -> Result<bool, EvalError> {
        for part in &self.conjuncts {
            if !part.eval_bool(req)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The compiled policies of one slice.
#[derive(Debug, Default)]
pub(crate) struct CompiledSet {
    policies: Vec<Arc<CompiledPolicy>>,
}

impl CompiledSet {
    pub(crate) fn new(policies: Vec<Arc<CompiledPolicy>>) -> CompiledSet {
        CompiledSet { policies }
    }

    /// Decides the request like Cedar's `Authorizer`, or names the first policy that errored.
    pub(crate) fn evaluate<'s>(&'s self, req: &RequestView<'_>) -> Result<Answer<'s>, PolicyError> {
        let mut forbids = Vec::new();
        let mut permits = Vec::new();
        for policy in &self.policies {
            // Every policy is evaluated even after a forbid matched: an error anywhere in the
            // slice must still reach the engine, which fails closed on it.
            match policy.satisfied(req) {
                Ok(true) if policy.forbid => forbids.push(&policy.id),
                Ok(true) => permits.push(&policy.id),
                Ok(false) => {}
                Err(error) => {
                    return Err(PolicyError {
                        policy: policy.id.clone(),
                        error,
                    });
                }
            }
        }
        Ok(if !forbids.is_empty() {
            Answer {
                allow: false,
                determining: forbids,
            }
        } else {
            Answer {
                allow: !permits.is_empty(),
                determining: permits,
            }
        })
    }
}

/// The value of `principal in E` (E an entity literal) on every request of a slice, when the
/// slice's key decides it: the agent's region and team are the slice's, and so is its tenant
/// when the slice belongs to a tenant folder.
fn principal_in_known(node: &Node, facts: &SliceFacts<'_>) -> Option<bool> {
    let Node::Binary(BinOp::In, Operand::Var(Var::Principal), Operand::Const(Const::Entity(lit))) =
        node
    else {
        return None;
    };
    let id = &*lit.id;
    match lit.ty.kind {
        Kind::Region => Some(facts.region == Some(id)),
        Kind::Team => Some(facts.team == Some(id)),
        Kind::Tenant => match facts.tenant {
            Some(tenant) => Some(tenant == id),
            None if facts.tenant_folders.contains(id) => Some(false),
            None => None,
        },
        _ => None,
    }
}

/// Compiles one policy; `attributes` lists the context attributes the engine supplies, in the
/// order of `RequestView::context`. An attribute the list lacks is always absent, as it is
/// in the context the engine hands Cedar.
pub(crate) fn compile(
    policy: &Policy,
    attributes: &[&str],
) -> Result<CompiledPolicy, CompileError> {
    let tree = policy
        .to_pst()
        .map_err(|e| CompileError::SyntaxTree(e.to_string()))?;
    let body = tree.body();
    let compiler = Compiler { attributes };
    let mut parts = Vec::new();
    if let Some(p) = compiler.scope(Var::Principal, principal_scope(&body.principal))? {
        parts.push(p);
    }
    // Every request's action is the schema's one action, which has no ancestors (Cedar's
    // entities do not hold it), so the action constraint is decided here once.
    let action = action_literal();
    match &body.action {
        pst::ActionConstraint::Any => {}
        pst::ActionConstraint::Eq(uid) => {
            parts.push(Node::Const(Const::Bool(entity_literal(uid) == action)));
        }
        pst::ActionConstraint::In(uids) => parts.push(Node::Const(Const::Bool(
            uids.iter().any(|u| entity_literal(u) == action),
        ))),
    }
    if let Some(r) = compiler.scope(Var::Resource, resource_scope(&body.resource))? {
        parts.push(r);
    }
    for clause in body.clauses() {
        parts.push(match clause {
            pst::Clause::When(e) => compiler.expr(e, 0)?,
            pst::Clause::Unless(e) => Node::Not(Box::new(compiler.expr(e, 0)?)),
        });
    }
    // A `true` conjunct changes nothing; after a `false` one nothing else is evaluated.
    let mut conjuncts = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Node::Const(Const::Bool(true)) => {}
            Node::Const(Const::Bool(false)) => {
                conjuncts.push(part);
                break;
            }
            other => conjuncts.push(other),
        }
    }
    Ok(CompiledPolicy {
        id: policy.id().clone(),
        forbid: body.effect == pst::Effect::Forbid,
        conjuncts,
    })
}

/// A principal or resource scope constraint; the PST has one enum for each, of the same shape.
enum ScopePart<'t> {
    Any,
    Eq(&'t pst::EntityOrSlot),
    In(&'t pst::EntityOrSlot),
    Is(&'t pst::EntityType),
    IsIn(&'t pst::EntityType, &'t pst::EntityOrSlot),
}

fn principal_scope(c: &pst::PrincipalConstraint) -> ScopePart<'_> {
    match c {
        pst::PrincipalConstraint::Any => ScopePart::Any,
        pst::PrincipalConstraint::Eq(e) => ScopePart::Eq(e),
        pst::PrincipalConstraint::In(e) => ScopePart::In(e),
        pst::PrincipalConstraint::Is(t) => ScopePart::Is(t),
        pst::PrincipalConstraint::IsIn(t, e) => ScopePart::IsIn(t, e),
    }
}

fn resource_scope(c: &pst::ResourceConstraint) -> ScopePart<'_> {
    match c {
        pst::ResourceConstraint::Any => ScopePart::Any,
        pst::ResourceConstraint::Eq(e) => ScopePart::Eq(e),
        pst::ResourceConstraint::In(e) => ScopePart::In(e),
        pst::ResourceConstraint::Is(t) => ScopePart::Is(t),
        pst::ResourceConstraint::IsIn(t, e) => ScopePart::IsIn(t, e),
    }
}

struct Compiler<'c> {
    attributes: &'c [&'c str],
}

impl Compiler<'_> {
    fn scope(&self, var: Var, part: ScopePart<'_>) -> Result<Option<Node>, CompileError> {
        let entity = |e: &pst::EntityOrSlot| match e {
            pst::EntityOrSlot::Entity(uid) => {
                Ok(Box::new(Node::Const(Const::Entity(entity_literal(uid)))))
            }
            pst::EntityOrSlot::Slot(_) => Err(unsupported("template slot")),
        };
        let this = || Box::new(Node::Var(var));
        Ok(match part {
            ScopePart::Any => None,
            ScopePart::Eq(e) => Some(Node::Binary(BinOp::Eq, this().into(), entity(e)?.into())),
            ScopePart::In(e) => Some(Node::Binary(BinOp::In, this().into(), entity(e)?.into())),
            ScopePart::Is(t) => Some(Node::Is(this(), type_name(t), None)),
            ScopePart::IsIn(t, e) => Some(Node::Is(this(), type_name(t), Some(entity(e)?))),
        })
    }

    fn expr(&self, e: &pst::Expr, depth: usize) -> Result<Node, CompileError> {
        if depth > MAX_DEPTH {
            return Err(unsupported("expression nested too deeply"));
        }
        let sub = |e: &pst::Expr| self.expr(e, depth + 1).map(Box::new);
        Ok(match e {
            pst::Expr::Literal(_) | pst::Expr::Set(_) => match constant(e) {
                Some(c) => Node::Const(c),
                None => {
                    return Err(unsupported(
                        "literal kind, or a set with non-literal elements",
                    ));
                }
            },
            pst::Expr::Var(pst::Var::Principal) => Node::Var(Var::Principal),
            pst::Expr::Var(pst::Var::Action) => Node::Const(Const::Entity(action_literal())),
            pst::Expr::Var(pst::Var::Resource) => Node::Var(Var::Resource),
            pst::Expr::Var(pst::Var::Context) => {
                return Err(unsupported("`context` as a whole value"));
            }
            pst::Expr::UnaryOp { op, expr } => {
                let arg = sub(expr)?;
                match op {
                    pst::UnaryOp::Not => Node::Not(arg),
                    pst::UnaryOp::Neg => Node::Neg(arg),
                    pst::UnaryOp::IsEmpty => Node::IsEmpty(arg),
                    other => return Err(unsupported(&format!("operator {other}"))),
                }
            }
            pst::Expr::BinaryOp { op, left, right } => {
                let (l, r) = (sub(left)?, sub(right)?);
                match op {
                    pst::BinaryOp::And => Node::And(l, r),
                    pst::BinaryOp::Or => Node::Or(l, r),
                    pst::BinaryOp::Eq => Node::Binary(BinOp::Eq, l.into(), r.into()),
                    pst::BinaryOp::NotEq => {
                        Node::Not(Box::new(Node::Binary(BinOp::Eq, l.into(), r.into())))
                    }
                    pst::BinaryOp::Less => Node::Binary(BinOp::Less, l.into(), r.into()),
                    pst::BinaryOp::LessEq => Node::Binary(BinOp::LessEq, l.into(), r.into()),
                    pst::BinaryOp::Greater => Node::Binary(BinOp::Greater, l.into(), r.into()),
                    pst::BinaryOp::GreaterEq => Node::Binary(BinOp::GreaterEq, l.into(), r.into()),
                    pst::BinaryOp::Add => Node::Arith(ArithOp::Add, l.into(), r.into()),
                    pst::BinaryOp::Sub => Node::Arith(ArithOp::Sub, l.into(), r.into()),
                    pst::BinaryOp::Mul => Node::Arith(ArithOp::Mul, l.into(), r.into()),
                    pst::BinaryOp::In => Node::Binary(BinOp::In, l.into(), r.into()),
                    pst::BinaryOp::Contains => Node::Binary(BinOp::Contains, l.into(), r.into()),
                    pst::BinaryOp::ContainsAll => {
                        Node::Binary(BinOp::ContainsAll, l.into(), r.into())
                    }
                    pst::BinaryOp::ContainsAny => {
                        Node::Binary(BinOp::ContainsAny, l.into(), r.into())
                    }
                    other => return Err(unsupported(&format!("operator {other}"))),
                }
            }
            pst::Expr::GetAttr { expr, attr } => match &**expr {
                pst::Expr::Var(pst::Var::Context) if cedar_only(attr) => {
                    return Err(unsupported("an attribute only Cedar evaluates"));
                }
                pst::Expr::Var(pst::Var::Context) => match self.slot(attr) {
                    Some(i) => Node::Attr(i),
                    None => Node::AbsentAttr,
                },
                _ => return Err(unsupported("attribute of anything but `context`")),
            },
            pst::Expr::HasAttr { expr, attrs }
                if matches!(&**expr, pst::Expr::Var(pst::Var::Context))
                    && cedar_only(&attrs.head) =>
            {
                return Err(unsupported("`has` on an attribute only Cedar evaluates"));
            }
            pst::Expr::HasAttr { expr, attrs } => match (&**expr, attrs.tail.is_empty()) {
                (pst::Expr::Var(pst::Var::Context), true) => match self.slot(&attrs.head) {
                    Some(i) => Node::Has(i),
                    None => Node::Const(Const::Bool(false)),
                },
                _ => return Err(unsupported("`has` on anything but one `context` attribute")),
            },
            pst::Expr::Like { expr, pattern } => Node::Like(sub(expr)?, Pattern::new(pattern)),
            pst::Expr::Is {
                expr,
                entity_type,
                in_expr,
            } => Node::Is(
                sub(expr)?,
                type_name(entity_type),
                in_expr.as_deref().map(sub).transpose()?,
            ),
            pst::Expr::IfThenElse {
                cond,
                then_expr,
                else_expr,
            } => Node::If(sub(cond)?, sub(then_expr)?, sub(else_expr)?),
            _ => return Err(unsupported("expression kind")),
        })
    }

    fn slot(&self, attr: &str) -> Option<usize> {
        self.attributes.iter().position(|a| *a == attr)
    }
}

/// `context.<attr>` is for Cedar alone (`CEDAR_ONLY_ATTRIBUTES`).
fn cedar_only(attr: &str) -> bool {
    crate::engine::CEDAR_ONLY_ATTRIBUTES.contains(&attr)
}

fn unsupported(what: &str) -> CompileError {
    CompileError::Unsupported(what.to_string())
}

/// A literal, or a set whose elements are all constants.
fn constant(e: &pst::Expr) -> Option<Const> {
    match e {
        pst::Expr::Literal(pst::Literal::Bool(b)) => Some(Const::Bool(*b)),
        pst::Expr::Literal(pst::Literal::Long(n)) => Some(Const::Long(*n)),
        pst::Expr::Literal(pst::Literal::String(s)) => Some(Const::Str(s.as_str().into())),
        pst::Expr::Literal(pst::Literal::EntityUID(uid)) => {
            Some(Const::Entity(entity_literal(uid)))
        }
        pst::Expr::Set(items) => items
            .iter()
            .map(|item| constant(item))
            .collect::<Option<Vec<_>>>()
            .map(|v| Const::Set(v.into())),
        _ => None,
    }
}

fn type_name(t: &pst::EntityType) -> TypeName {
    let mut name = String::new();
    for part in t.0.namespace.iter() {
        name.push_str(part.as_str());
        name.push_str("::");
    }
    name.push_str(t.0.id.as_str());
    TypeName::new(&name)
}

fn entity_literal(uid: &pst::EntityUID) -> EntityLit {
    EntityLit {
        ty: type_name(&uid.ty),
        id: uid.eid.as_str().into(),
    }
}

/// `MeshOS::Action::"act"`, the action of every request.
fn action_literal() -> EntityLit {
    EntityLit {
        ty: TypeName::new(entity_type::ACTION),
        id: ACTION_ID.into(),
    }
}

/// An entity type as the request knows it: one of the types the engine builds, or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tenant,
    Region,
    Team,
    Agent,
    Operation,
    Action,
    Other,
}

/// An entity type: its kind, decided once so that requests compare kinds, not names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeName {
    kind: Kind,
    name: Box<str>,
}

impl TypeName {
    fn new(name: &str) -> TypeName {
        let kind = match name {
            entity_type::TENANT => Kind::Tenant,
            entity_type::REGION => Kind::Region,
            entity_type::TEAM => Kind::Team,
            entity_type::AGENT => Kind::Agent,
            entity_type::OPERATION => Kind::Operation,
            entity_type::ACTION => Kind::Action,
            _ => Kind::Other,
        };
        TypeName {
            kind,
            name: name.into(),
        }
    }

    /// Whether an entity of kind `kind` named `name` has this type.
    fn is(&self, kind: Kind, name: &str) -> bool {
        self.kind == kind && (kind != Kind::Other || *self.name == *name)
    }
}

/// The request's entities an expression can name (the action is compiled as a constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Principal,
    Resource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityLit {
    ty: TypeName,
    id: Box<str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Const {
    Bool(bool),
    Long(i64),
    Str(Box<str>),
    Entity(EntityLit),
    Set(Box<[Const]>),
}

impl Const {
    fn value(&self) -> Value<'_> {
        match self {
            Const::Bool(b) => Value::Bool(*b),
            Const::Long(n) => Value::Long(*n),
            Const::Str(s) => Value::Str(s),
            Const::Entity(e) => Value::Entity(Entity::Literal(e)),
            Const::Set(items) => Value::Set(SetVal::Literal(items)),
        }
    }
}

/// Operators with a boolean result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Eq,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    In,
    Contains,
    ContainsAll,
    ContainsAny,
}

/// Operators with a `Long` result; `i64` overflow is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
}

/// A compiled expression.
#[derive(Debug, Clone)]
enum Node {
    Const(Const),
    Var(Var),
    /// `context.attr` for an attribute the engine supplies (by position).
    Attr(usize),
    /// `context.attr` for an attribute the engine never supplies: always an error.
    AbsentAttr,
    /// `context has attr` (by position).
    Has(usize),
    Not(Box<Node>),
    Neg(Box<Node>),
    IsEmpty(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    Binary(BinOp, Operand, Operand),
    Arith(ArithOp, Operand, Operand),
    Like(Box<Node>, Pattern),
    /// `expr is Type`, or `expr is Type in parent`.
    Is(Box<Node>, TypeName, Option<Box<Node>>),
}

/// An operand of a binary operator; the common leaves are read in place rather than through
/// another node.
#[derive(Debug, Clone)]
enum Operand {
    Attr(usize),
    Const(Const),
    Var(Var),
    Expr(Box<Node>),
}

impl From<Box<Node>> for Operand {
    fn from(node: Box<Node>) -> Operand {
        match *node {
            Node::Attr(i) => Operand::Attr(i),
            Node::Const(c) => Operand::Const(c),
            Node::Var(v) => Operand::Var(v),
            other => Operand::Expr(Box::new(other)),
        }
    }
}

impl Operand {
    #[inline]
    fn eval<'a>(&'a self, req: &RequestView<'a>) -> Result<Value<'a>, EvalError> {
        match self {
            Operand::Attr(i) => match req.context.get(*i) {
                Some(Some(v)) => Ok(Value::from(*v)),
                _ => Err(EvalError::MissingAttribute),
            },
            Operand::Const(c) => Ok(c.value()),
            Operand::Var(v) => Ok(Value::Entity(Entity::Var(*v))),
            Operand::Expr(node) => node.eval(req),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Entity<'a> {
    Literal(&'a EntityLit),
    Var(Var),
}

#[derive(Debug, Clone, Copy)]
enum SetVal<'a> {
    Literal(&'a [Const]),
    Strings(StrSet<'a>),
}

impl<'a> SetVal<'a> {
    fn is_empty(self) -> bool {
        match self {
            SetVal::Literal(items) => items.is_empty(),
            SetVal::Strings(s) => s.is_empty(),
        }
    }

    fn any(self, mut f: impl FnMut(Value<'a>) -> bool) -> bool {
        match self {
            SetVal::Literal(items) => items.iter().any(|c| f(c.value())),
            SetVal::Strings(s) => s.any(|x| f(Value::Str(x))),
        }
    }

    fn contains(self, v: Value<'a>, req: &RequestView<'a>) -> bool {
        // A string set cannot hold anything but strings: skip the scan.
        match (self, v) {
            (SetVal::Strings(s), Value::Str(x)) => s.any(|e| e == x),
            (SetVal::Strings(_), _) => false,
            _ => self.any(|e| values_equal(e, v, req)),
        }
    }

    /// Every element of `self` is in `other`.
    fn is_subset(self, other: SetVal<'a>, req: &RequestView<'a>) -> bool {
        !self.any(|e| !other.contains(e, req))
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Bool(bool),
    Long(i64),
    Str(&'a str),
    Entity(Entity<'a>),
    Set(SetVal<'a>),
}

impl<'a> Value<'a> {
    fn long(self) -> Result<i64, EvalError> {
        match self {
            Value::Long(n) => Ok(n),
            _ => Err(EvalError::Type),
        }
    }

    fn set(self) -> Result<SetVal<'a>, EvalError> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(EvalError::Type),
        }
    }
}

impl<'a> From<CtxValue<'a>> for Value<'a> {
    fn from(v: CtxValue<'a>) -> Value<'a> {
        match v {
            CtxValue::Bool(b) => Value::Bool(b),
            CtxValue::Long(n) => Value::Long(n),
            CtxValue::Str(s) => Value::Str(s),
            CtxValue::Set(s) => Value::Set(SetVal::Strings(s)),
        }
    }
}

impl Node {
    /// Evaluates a node whose value must be a boolean: a conjunct, or an operand of `!`, `&&`,
    /// `||` or `if`. Boolean operators are evaluated here without building a `Value`.
    fn eval_bool(&self, req: &RequestView<'_>) -> Result<bool, EvalError> {
        match self {
            Node::Const(Const::Bool(b)) => Ok(*b),
            Node::Attr(i) => match req.context.get(*i) {
                Some(Some(CtxValue::Bool(b))) => Ok(*b),
                Some(Some(_)) => Err(EvalError::Type),
                _ => Err(EvalError::MissingAttribute),
            },
            Node::Has(i) => Ok(matches!(req.context.get(*i), Some(Some(_)))),
            Node::Not(e) => Ok(!e.eval_bool(req)?),
            Node::And(l, r) => Ok(l.eval_bool(req)? && r.eval_bool(req)?),
            Node::Or(l, r) => Ok(l.eval_bool(req)? || r.eval_bool(req)?),
            Node::If(cond, then_node, else_node) => {
                if cond.eval_bool(req)? {
                    then_node.eval_bool(req)
                } else {
                    else_node.eval_bool(req)
                }
            }
            Node::Binary(op, l, r) => {
                let (a, b) = (l.eval(req)?, r.eval(req)?);
                binary(*op, a, b, req)
            }
            Node::IsEmpty(e) => Ok(e.eval(req)?.set()?.is_empty()),
            Node::Like(e, pattern) => match e.eval(req)? {
                Value::Str(s) => Ok(pattern.matches(s)),
                _ => Err(EvalError::Type),
            },
            Node::Is(e, type_name, parent) => {
                let Value::Entity(entity) = e.eval(req)? else {
                    return Err(EvalError::Type);
                };
                // `e is T in p` is `e is T && e in p`: `p` only counts when the type matches.
                let (kind, name, _) = identity(entity, req);
                if !type_name.is(kind, name) {
                    return Ok(false);
                }
                match parent {
                    None => Ok(true),
                    Some(p) => is_in(Value::Entity(entity), p.eval(req)?, req),
                }
            }
            Node::Const(_) | Node::Var(_) | Node::AbsentAttr | Node::Neg(_) | Node::Arith(..) => {
                match self.eval(req)? {
                    Value::Bool(b) => Ok(b),
                    _ => Err(EvalError::Type),
                }
            }
        }
    }

    fn eval<'a>(&'a self, req: &RequestView<'a>) -> Result<Value<'a>, EvalError> {
        Ok(match self {
            Node::Const(c) => c.value(),
            Node::Var(v) => Value::Entity(Entity::Var(*v)),
            Node::Attr(i) => match req.context.get(*i) {
                Some(Some(v)) => Value::from(*v),
                _ => return Err(EvalError::MissingAttribute),
            },
            Node::AbsentAttr => return Err(EvalError::MissingAttribute),
            Node::Neg(e) => Value::Long(
                e.eval(req)?
                    .long()?
                    .checked_neg()
                    .ok_or(EvalError::Overflow)?,
            ),
            Node::Arith(op, l, r) => {
                let (a, b) = (l.eval(req)?.long()?, r.eval(req)?.long()?);
                let result = match op {
                    ArithOp::Add => a.checked_add(b),
                    ArithOp::Sub => a.checked_sub(b),
                    ArithOp::Mul => a.checked_mul(b),
                };
                Value::Long(result.ok_or(EvalError::Overflow)?)
            }
            Node::If(cond, then_node, else_node) => {
                if cond.eval_bool(req)? {
                    then_node.eval(req)?
                } else {
                    else_node.eval(req)?
                }
            }
            Node::Has(_)
            | Node::Not(_)
            | Node::And(..)
            | Node::Or(..)
            | Node::Binary(..)
            | Node::IsEmpty(_)
            | Node::Like(..)
            | Node::Is(..) => Value::Bool(self.eval_bool(req)?),
        })
    }
}

/// A boolean binary operator applied to evaluated operands.
fn binary<'a>(
    op: BinOp,
    a: Value<'a>,
    b: Value<'a>,
    req: &RequestView<'a>,
) -> Result<bool, EvalError> {
    Ok(match op {
        BinOp::Eq => values_equal(a, b, req),
        BinOp::Less => a.long()? < b.long()?,
        BinOp::LessEq => a.long()? <= b.long()?,
        BinOp::Greater => a.long()? > b.long()?,
        BinOp::GreaterEq => a.long()? >= b.long()?,
        BinOp::In => is_in(a, b, req)?,
        BinOp::Contains => a.set()?.contains(b, req),
        BinOp::ContainsAll => {
            let (whole, part) = (a.set()?, b.set()?);
            part.is_subset(whole, req)
        }
        BinOp::ContainsAny => {
            let (whole, part) = (a.set()?, b.set()?);
            part.any(|e| whole.contains(e, req))
        }
    })
}

fn values_equal<'a>(a: Value<'a>, b: Value<'a>, req: &RequestView<'a>) -> bool {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Long(x), Value::Long(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Entity(x), Value::Entity(y)) => entities_equal(x, y, req),
        (Value::Set(x), Value::Set(y)) => x.is_subset(y, req) && y.is_subset(x, req),
        _ => false,
    }
}

/// An entity id as the request holds it: the agent's is `tenant/agent`, kept in two parts so
/// no request needs to build the joined string.
#[derive(Clone, Copy)]
enum EntityId<'a> {
    Plain(&'a str),
    TenantScoped(&'a str, &'a str),
}

fn identity<'a>(e: Entity<'a>, req: &RequestView<'a>) -> (Kind, &'a str, EntityId<'a>) {
    match e {
        Entity::Literal(lit) => (lit.ty.kind, &lit.ty.name, EntityId::Plain(&lit.id)),
        Entity::Var(Var::Principal) => (
            Kind::Agent,
            entity_type::AGENT,
            EntityId::TenantScoped(req.tenant, req.agent),
        ),
        Entity::Var(Var::Resource) => (
            Kind::Operation,
            entity_type::OPERATION,
            EntityId::Plain(req.operation),
        ),
    }
}

/// Whether `id` is `tenant/agent`.
fn is_scoped_id(id: &str, tenant: &str, agent: &str) -> bool {
    id.len() == tenant.len() + 1 + agent.len()
        && id.starts_with(tenant)
        && id.as_bytes().get(tenant.len()) == Some(&b'/')
        && id.ends_with(agent)
}

fn ids_equal(a: EntityId<'_>, b: EntityId<'_>) -> bool {
    match (a, b) {
        (EntityId::Plain(x), EntityId::Plain(y)) => x == y,
        (EntityId::Plain(x), EntityId::TenantScoped(t, n))
        | (EntityId::TenantScoped(t, n), EntityId::Plain(x)) => is_scoped_id(x, t, n),
        (EntityId::TenantScoped(t1, n1), EntityId::TenantScoped(t2, n2)) => t1
            .bytes()
            .chain(std::iter::once(b'/'))
            .chain(n1.bytes())
            .eq(t2.bytes().chain(std::iter::once(b'/')).chain(n2.bytes())),
    }
}

fn entities_equal<'a>(a: Entity<'a>, b: Entity<'a>, req: &RequestView<'a>) -> bool {
    let (kind_a, name_a, id_a) = identity(a, req);
    let (kind_b, name_b, id_b) = identity(b, req);
    kind_a == kind_b && (kind_a != Kind::Other || name_a == name_b) && ids_equal(id_a, id_b)
}

/// Depth of an entity in the request's chain Tenant ← Region ← Team ← Agent, when it is one
/// of the chain's entities; each entity's ancestors are the chain entities above it. Other
/// entities (the operation, the action, anything else) have no ancestors.
fn chain_depth(e: Entity<'_>, req: &RequestView<'_>) -> Option<u8> {
    match e {
        Entity::Var(Var::Principal) => Some(3),
        Entity::Var(Var::Resource) => None,
        Entity::Literal(lit) => match lit.ty.kind {
            Kind::Tenant if *lit.id == *req.tenant => Some(0),
            Kind::Region if req.region == Some(&*lit.id) => Some(1),
            Kind::Team if req.team == Some(&*lit.id) => Some(2),
            Kind::Agent if is_scoped_id(&lit.id, req.tenant, req.agent) => Some(3),
            _ => None,
        },
    }
}

fn descends<'a>(child: Entity<'a>, ancestor: Entity<'a>, req: &RequestView<'a>) -> bool {
    if entities_equal(child, ancestor, req) {
        return true;
    }
    matches!(
        (chain_depth(child, req), chain_depth(ancestor, req)),
        (Some(c), Some(a)) if a < c
    )
}

fn is_in<'a>(a: Value<'a>, b: Value<'a>, req: &RequestView<'a>) -> Result<bool, EvalError> {
    let Value::Entity(child) = a else {
        return Err(EvalError::Type);
    };
    match b {
        Value::Entity(parent) => Ok(descends(child, parent, req)),
        Value::Set(set) => {
            // Cedar reads the whole set as entities before testing any of them, so a
            // non-entity element is an error even when an earlier element matches.
            let mut only_entities = true;
            let mut found = false;
            set.any(|v| {
                match v {
                    Value::Entity(parent) => found = found || descends(child, parent, req),
                    _ => only_entities = false,
                }
                false
            });
            if only_entities {
                Ok(found)
            } else {
                Err(EvalError::Type)
            }
        }
        _ => Err(EvalError::Type),
    }
}

/// A `like` pattern: literal runs between `*` wildcards.
#[derive(Debug, Clone)]
struct Pattern {
    /// The text between wildcards; one more than the number of wildcards.
    pieces: Vec<String>,
}

impl Pattern {
    fn new(elements: &[pst::PatternElem]) -> Pattern {
        let mut pieces = vec![String::new()];
        for element in elements {
            match element {
                pst::PatternElem::Char(c) => {
                    if let Some(last) = pieces.last_mut() {
                        last.push(*c);
                    }
                }
                pst::PatternElem::Wildcard => pieces.push(String::new()),
            }
        }
        Pattern { pieces }
    }

    /// Whether `text` matches. Matching the UTF-8 bytes of the literal runs is the same as
    /// matching characters, since a run always starts and ends on a character boundary.
    fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return text == first;
        };
        if text.len() < first.len() + last.len()
            || !text.starts_with(first.as_str())
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let Some(mut between) = text.get(first.len()..text.len() - last.len()) else {
            return false;
        };
        // Leftmost placement of each run leaves the most room for the ones after it.
        for piece in middle {
            let rest = between
                .find(piece.as_str())
                .and_then(|at| between.get(at + piece.len()..));
            match rest {
                Some(rest) => between = rest,
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, Entity as CedarEntity, EntityId as CedarId,
        EntityTypeName, EntityUid, PolicySet, Request, RestrictedExpression,
    };
    use std::collections::HashSet;
    use std::str::FromStr;

    const ATTRS: &[&str] = &["model", "n", "tags", "flag"];

    fn uid(ty: &str, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), CedarId::new(id))
    }

    /// Cedar's answer for a request with the given context, agent `acme/bot` in team `ops`
    /// of region `eu`: (allow, determining ids sorted, errored).
    fn cedar(policies: &PolicySet, ctx: &[Option<CtxValue<'_>>]) -> (bool, Vec<String>, bool) {
        let tenant = uid(entity_type::TENANT, "acme");
        let region = uid(entity_type::REGION, "eu");
        let team = uid(entity_type::TEAM, "ops");
        let agent = uid(entity_type::AGENT, "acme/bot");
        let op = uid(entity_type::OPERATION, "email.send");
        let entities = Entities::from_entities(
            [
                CedarEntity::new_no_attrs(tenant.clone(), HashSet::new()),
                CedarEntity::new_no_attrs(region.clone(), HashSet::from([tenant])),
                CedarEntity::new_no_attrs(team.clone(), HashSet::from([region])),
                CedarEntity::new_no_attrs(agent.clone(), HashSet::from([team])),
                CedarEntity::new_no_attrs(op.clone(), HashSet::new()),
            ],
            None,
        )
        .unwrap();
        let pairs = ATTRS.iter().zip(ctx).filter_map(|(name, v)| {
            let v = match (*v)? {
                CtxValue::Bool(b) => RestrictedExpression::new_bool(b),
                CtxValue::Long(n) => RestrictedExpression::new_long(n),
                CtxValue::Str(s) => RestrictedExpression::new_string(s.to_string()),
                CtxValue::Set(s) => RestrictedExpression::new_set(
                    s.to_strings()
                        .into_iter()
                        .map(RestrictedExpression::new_string),
                ),
            };
            Some((name.to_string(), v))
        });
        let request = Request::new(
            agent,
            uid(entity_type::ACTION, ACTION_ID),
            op,
            Context::from_pairs(pairs).unwrap(),
            None,
        )
        .unwrap();
        let response = Authorizer::new().is_authorized(&request, policies, &entities);
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        ids.sort();
        (
            response.decision() == Decision::Allow,
            ids,
            response.diagnostics().errors().next().is_some(),
        )
    }

    fn compiled(policies: &PolicySet, ctx: &[Option<CtxValue<'_>>]) -> (bool, Vec<String>, bool) {
        let set = CompiledSet::new(
            policies
                .policies()
                .map(|p| Arc::new(compile(p, ATTRS).unwrap()))
                .collect(),
        );
        let view = RequestView {
            tenant: "acme",
            region: Some("eu"),
            team: Some("ops"),
            agent: "bot",
            operation: "email.send",
            context: ctx,
        };
        match set.evaluate(&view) {
            Ok(answer) => {
                let mut ids: Vec<String> =
                    answer.determining.iter().map(|id| id.to_string()).collect();
                ids.sort();
                (answer.allow, ids, false)
            }
            Err(_) => (false, Vec::new(), true),
        }
    }

    /// Runs both evaluators and checks they agree; returns the answer.
    fn both(text: &str, ctx: &[Option<CtxValue<'_>>]) -> (bool, Vec<String>, bool) {
        // Named by their @id, as the bundle names them.
        let mut policies = PolicySet::new();
        for p in PolicySet::from_str(text).unwrap().policies() {
            let id = PolicyId::new(p.annotation("id").unwrap());
            policies.add(p.new_id(id)).unwrap();
        }
        let reference = cedar(&policies, ctx);
        let fast = compiled(&policies, ctx);
        if reference.2 {
            assert!(fast.2, "cedar errored, compiled did not: {text}");
        } else {
            assert_eq!(fast, reference, "{text}");
        }
        reference
    }

    fn ctx_full<'a>() -> Vec<Option<CtxValue<'a>>> {
        vec![
            Some(CtxValue::Str("gpt-4o")),
            Some(CtxValue::Long(5)),
            Some(CtxValue::Set(StrSet::Borrowed(&["a", "b"]))),
            Some(CtxValue::Bool(true)),
        ]
    }

    #[test]
    fn missing_optional_attribute_errors_like_cedar() {
        let mut ctx = ctx_full();
        ctx[0] = None;
        let text = r#"@id("p") permit (principal, action, resource);
                      @id("f") forbid (principal, action, resource) when { context.model == "x" };"#;
        // The forbid errors; Cedar skips it and allows, the engine must deny on the error.
        let (allow, ids, errored) = both(text, &ctx);
        assert!(allow && errored && ids == ["p"]);
        // Guarded by `has`, the same forbid simply does not match.
        let guarded = r#"@id("f") forbid (principal, action, resource)
                         when { context has model && context.model == "x" };"#;
        assert_eq!(both(guarded, &ctx), (false, vec![], false));
        // An attribute the engine never supplies is absent too.
        let unknown = r#"@id("f") forbid (principal, action, resource) when { context.nope };"#;
        assert!(both(unknown, &ctx).2);
        let has_unknown =
            r#"@id("p") permit (principal, action, resource) unless { context has nope };"#;
        assert_eq!(both(has_unknown, &ctx), (true, vec!["p".into()], false));
    }

    #[test]
    fn and_or_if_short_circuit_past_errors() {
        let mut ctx = ctx_full();
        ctx[0] = None;
        for (text, errored) in [
            ("false && context.model == \"x\"", false),
            ("true && context.model == \"x\"", true),
            ("true || context.model == \"x\"", false),
            ("false || context.model == \"x\"", true),
            (
                "if context.flag then true else context.model == \"x\"",
                false,
            ),
            (
                "if !context.flag then true else context.model == \"x\"",
                true,
            ),
            // Both operands of other operators are evaluated.
            ("true == (context.model == \"x\")", true),
            // A non-boolean condition or operand is a type error.
            ("context.n", true),
            ("context.n && true", true),
            ("false && context.n", false),
            ("true && context.n", true),
        ] {
            let policy =
                format!("@id(\"f\") forbid (principal, action, resource) when {{ {text} }};");
            assert_eq!(both(&policy, &ctx).2, errored, "{text}");
        }
        // The scope is checked before the conditions: outside it, nothing errors.
        let scoped = r#"@id("f") forbid (principal in MeshOS::Team::"other", action, resource)
                        when { context.model == "x" };"#;
        assert_eq!(both(scoped, &ctx), (false, vec![], false));
        // `when` and `unless` clauses run in order and stop at the first false one.
        let clauses = r#"@id("f") forbid (principal, action, resource)
                         when { context.n > 10 } unless { context.model == "x" };"#;
        assert_eq!(both(clauses, &ctx), (false, vec![], false));
    }

    #[test]
    fn overflow_and_type_errors_match_cedar() {
        let ctx = ctx_full();
        for (text, errored) in [
            ("context.n * 4611686018427387904 > 0", true),
            ("context.n + 9223372036854775807 > 0", true),
            (
                "context.n - 9223372036854775807 < -9223372036854775000",
                false,
            ),
            ("-context.n < 0", false),
            ("context.n < \"x\"", true),
            ("context.model like \"gpt*\"", false),
            ("context.n like \"5\"", true),
            ("context.model.contains(\"g\")", true),
            ("context.tags.containsAll(context.model)", true),
            ("context.tags.isEmpty()", false),
            ("context.model.isEmpty()", true),
            ("principal in [MeshOS::Team::\"ops\", \"x\"]", true),
            ("principal in context.tags", true),
            ("context.model in MeshOS::Team::\"ops\"", true),
            ("context.model is MeshOS::Agent", true),
            ("if context.n then true else false", true),
        ] {
            let policy =
                format!("@id(\"f\") forbid (principal, action, resource) when {{ {text} }};");
            assert_eq!(both(&policy, &ctx).2, errored, "{text}");
        }
    }

    #[test]
    fn operators_agree_with_cedar() {
        let ctx = ctx_full();
        for text in [
            "context.model == \"gpt-4o\"",
            "context.model != \"gpt-4\"",
            "context.n >= 5 && context.n <= 5 && !(context.n > 5) && !(context.n < 5)",
            "context.n + 1 == 6 && context.n - 6 == -1 && context.n * 2 == 10",
            "context.tags == [\"b\", \"a\", \"a\"]",
            "context.tags.containsAll([\"a\"]) && !context.tags.containsAll([\"a\", \"c\"])",
            "context.tags.containsAny([\"c\", \"b\"])",
            "[\"x\", 1, true].contains(1) && ![1].contains(\"1\")",
            "[[1, 2], [3]].contains([2, 1])",
            "context.model like \"*4*\" && context.model like \"gpt-4o\" && !(context.model like \"*x*\")",
            "context.model like \"g*p*t*-*4*o\" && !(context.model like \"*o*o\")",
            "principal in MeshOS::Tenant::\"acme\" && principal in MeshOS::Region::\"eu\"",
            "!(principal in MeshOS::Tenant::\"other\") && principal in principal",
            "MeshOS::Team::\"ops\" in MeshOS::Tenant::\"acme\"",
            "!(MeshOS::Tenant::\"acme\" in MeshOS::Team::\"ops\")",
            "principal == MeshOS::Agent::\"acme/bot\" && principal != MeshOS::Agent::\"acme/bo\"",
            "principal is MeshOS::Agent in MeshOS::Team::\"ops\"",
            "!(principal is MeshOS::Team) && resource is MeshOS::Operation",
            "resource in [MeshOS::Operation::\"email.send\", MeshOS::Operation::\"x\"]",
            "action == MeshOS::Action::\"act\" && action in [MeshOS::Action::\"act\"]",
            "!(principal == MeshOS::Team::\"ops\" || resource == MeshOS::Operation::\"x\")",
            "!(principal in [])",
            "if context.flag then context.n == 5 else false",
        ] {
            let policy =
                format!("@id(\"f\") forbid (principal, action, resource) when {{ {text} }};");
            let (allow, ids, errored) = both(&policy, &ctx);
            assert!(!allow && !errored, "{text}");
            // Every expression above is meant to hold, except the ones with a deliberate error.
            assert_eq!(ids, vec!["f".to_string()], "{text}");
        }
    }

    #[test]
    fn scopes_agree_with_cedar() {
        let ctx = ctx_full();
        for (scope, matches) in [
            ("principal, action, resource", true),
            (
                "principal == MeshOS::Agent::\"acme/bot\", action, resource",
                true,
            ),
            (
                "principal in MeshOS::Region::\"eu\", action, resource",
                true,
            ),
            (
                "principal in MeshOS::Region::\"us\", action, resource",
                false,
            ),
            ("principal is MeshOS::Agent, action, resource", true),
            (
                "principal is MeshOS::Agent in MeshOS::Tenant::\"acme\", action, resource",
                true,
            ),
            (
                "principal, action == MeshOS::Action::\"act\", resource",
                true,
            ),
            (
                "principal, action in [MeshOS::Action::\"x\"], resource",
                false,
            ),
            (
                "principal, action, resource == MeshOS::Operation::\"email.send\"",
                true,
            ),
            (
                "principal, action, resource in MeshOS::Operation::\"x\"",
                false,
            ),
            ("principal, action, resource is MeshOS::Operation", true),
        ] {
            let policy = format!("@id(\"p\") permit ({scope});");
            let expected = if matches {
                vec!["p".to_string()]
            } else {
                vec![]
            };
            assert_eq!(both(&policy, &ctx), (matches, expected, false), "{scope}");
        }
    }

    #[test]
    fn reasons_are_the_satisfied_forbids_on_deny_and_permits_on_allow() {
        let ctx = ctx_full();
        let text = r#"@id("p1") permit (principal, action, resource);
                      @id("p2") permit (principal, action, resource) when { context.flag };
                      @id("p3") permit (principal, action, resource) when { !context.flag };
                      @id("f1") forbid (principal, action, resource) when { context.n > 100 };"#;
        assert_eq!(
            both(text, &ctx),
            (true, vec!["p1".into(), "p2".into()], false)
        );
        let with_forbids = format!(
            "{text}\n@id(\"f2\") forbid (principal, action, resource) when {{ context.n == 5 }};\n\
             @id(\"f3\") forbid (principal, action, resource);"
        );
        assert_eq!(
            both(&with_forbids, &ctx),
            (false, vec!["f2".into(), "f3".into()], false)
        );
        let nothing = r#"@id("p3") permit (principal, action, resource) when { !context.flag };"#;
        assert_eq!(both(nothing, &ctx), (false, vec![], false));
    }

    #[test]
    fn unsupported_constructs_are_not_compiled() {
        for text in [
            r#"permit (principal, action, resource) when { ip("10.0.0.1").isLoopback() };"#,
            r#"permit (principal, action, resource) when { {a: 1}.a == 1 };"#,
            r#"permit (principal, action, resource) when { context == {} };"#,
            r#"permit (principal, action, resource) when { principal.name == "x" };"#,
            r#"permit (principal, action, resource) when { [context.n].contains(1) };"#,
            r#"permit (principal, action, resource) when { principal.hasTag("x") };"#,
        ] {
            let policy = Policy::from_str(text).unwrap();
            assert!(
                matches!(compile(&policy, ATTRS), Err(CompileError::Unsupported(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn like_patterns() {
        let p = |s: &str| {
            let elems: Vec<pst::PatternElem> = s
                .chars()
                .map(|c| {
                    if c == '*' {
                        pst::PatternElem::Wildcard
                    } else {
                        pst::PatternElem::Char(c)
                    }
                })
                .collect();
            Pattern::new(&elems)
        };
        assert!(p("").matches(""));
        assert!(!p("").matches("a"));
        assert!(p("*").matches(""));
        assert!(p("a*a").matches("aa") && !p("a*a").matches("a"));
        assert!(p("*ab*ab*").matches("xabyab") && !p("*ab*ab*").matches("xaby"));
        assert!(p("é*ü").matches("éxü") && !p("é*ü").matches("éx"));
        assert!(p("**").matches("anything"));
    }
}
