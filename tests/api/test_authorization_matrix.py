"""Every root operation is tried by every role (and by nobody). An operation without a declared
permission, or missing from the table below, fails the test."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from domain.actor import Role
from schema.permissions import declared_roles
from schema.root import Mutation, Query, Subscription
from tests.helpers import (
    PASSWORD,
    consumer_token,
    gql,
    key,
    make_card,
    make_merchant,
    make_product,
    pay,
    token_for,
    uid,
)

ANON = "ANONYMOUS"
R = Role
PUBLIC = None

# operation -> (who may call it, document, variables factory(setup))
Vars = Callable[[dict[str, Any]], dict[str, Any]]
MATRIX: dict[str, tuple[frozenset[Role] | None, str, Vars]] = {
    "login": (
        PUBLIC,
        "mutation($i: LoginInput!) { login(input: $i) { errors { code } } }",
        lambda s: {"i": {"username": "nobody", "password": "x"}},
    ),
    "requestOtp": (
        PUBLIC,
        "mutation($i: RequestOtpInput!) { requestOtp(input: $i) { errors { code } } }",
        lambda s: {"i": {"phone": "12"}},
    ),
    "loginWithOtp": (
        PUBLIC,
        "mutation($i: LoginWithOtpInput!) { loginWithOtp(input: $i) { errors { code } } }",
        lambda s: {"i": {"phone": "13700000000", "code": "000000"}},
    ),
    "refreshToken": (
        PUBLIC,
        "mutation($i: RefreshTokenInput!) { refreshToken(input: $i) { errors { code } } }",
        lambda s: {"i": {"refreshToken": "rt_nope"}},
    ),
    "merchantCreate": (
        frozenset({R.OPERATOR}),
        "mutation($i: MerchantCreateInput!) { merchantCreate(input: $i) { merchant { id } errors { code } } }",
        lambda s: {
            "i": {
                "name": "m",
                "regionCode": "110105",
                "industry": "RETAIL",
                "adminUsername": uid("mx"),
                "adminPassword": PASSWORD,
            }
        },
    ),
    "storeCreate": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "mutation($i: StoreCreateInput!) { storeCreate(input: $i) { store { id } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"], "name": "s"}},
    ),
    "staffCreate": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "mutation($i: StaffCreateInput!) { staffCreate(input: $i) { staff { id } errors { code } } }",
        lambda s: {
            "i": {
                "merchantId": s["merchant_id"],
                "username": uid("sx"),
                "password": PASSWORD,
                "role": "MERCHANT_STAFF",
            }
        },
    ),
    "terminalRegister": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "mutation($i: TerminalRegisterInput!) { terminalRegister(input: $i) { terminalKey errors { code } } }",
        lambda s: {"i": {"storeId": s["store_id"], "name": "t"}},
    ),
    "officialCreate": (
        frozenset({R.OPERATOR}),
        "mutation($i: OfficialCreateInput!) { officialCreate(input: $i) { official { id } errors { code } } }",
        lambda s: {
            "i": {
                "username": uid("ox"),
                "password": PASSWORD,
                "role": "REGULATOR",
                "organisation": "商务局",
                "regionCode": "110000",
            }
        },
    ),
    "viewer": (frozenset(Role), "{ viewer { id role } }", lambda s: {}),
    "merchant": (
        frozenset(
            {R.OPERATOR, R.REGULATOR, R.CUSTODIAN, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}
        ),
        "query($id: ID!) { merchant(id: $id) { id name } }",
        lambda s: {"id": s["merchant_id"]},
    ),
    "merchants": (
        frozenset({R.OPERATOR, R.REGULATOR, R.CUSTODIAN}),
        "{ merchants(first: 5) { edges { node { id } } pageInfo { hasNextPage } } }",
        lambda s: {},
    ),
    "viewerEvents": (frozenset(Role), "subscription { viewerEvents { kind } }", lambda s: {}),
    "balanceChanged": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "subscription($id: ID!) { balanceChanged(cardId: $id) { balance } }",
        lambda s: {"id": s["card_id"]},
    ),
    "cardProductCreate": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "mutation($i: CardProductCreateInput!) { cardProductCreate(input: $i) { cardProduct { id } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"], "name": "p", "kind": "BEARER"}},
    ),
    "cardIssue": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "mutation($i: CardIssueInput!) { cardIssue(input: $i) { card { id } errors { code } } }",
        lambda s: {"i": {"productId": s["product_id"], "idempotencyKey": key()}},
    ),
    "topUp": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: TopUpInput!) { topUp(input: $i) { topUp { id } errors { code } } }",
        lambda s: {
            "i": {"cardId": s["card_id"], "amount": 100, "channel": "CASH", "idempotencyKey": key()}
        },
    ),
    "pay": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: PayInput!) { pay(input: $i) { payment { id } errors { code } } }",
        lambda s: {
            "i": {
                "storeId": s["store_id"],
                "cardId": s["card_id"],
                "amount": 1,
                "idempotencyKey": key(),
            }
        },
    ),
    "refund": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: RefundInput!) { refund(input: $i) { refund { id } errors { code } } }",
        lambda s: {"i": {"paymentId": s["payment_id"], "amount": 1, "idempotencyKey": key()}},
    ),
    "sessionRedeem": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: SessionRedeemInput!) { sessionRedeem(input: $i) { payment { id } errors { code } } }",
        lambda s: {
            "i": {"storeId": s["store_id"], "cardId": s["card_id"], "idempotencyKey": key()}
        },
    ),
    "cardHold": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: CardHoldInput!) { cardHold(input: $i) { hold { id } errors { code } } }",
        lambda s: {
            "i": {
                "storeId": s["store_id"],
                "cardId": s["card_id"],
                "amount": 1,
                "idempotencyKey": key(),
            }
        },
    ),
    "holdCapture": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: HoldCaptureInput!) { holdCapture(input: $i) { hold { id } errors { code } } }",
        lambda s: {"i": {"holdId": s["hold_id"], "amount": 1, "idempotencyKey": key()}},
    ),
    "holdRelease": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: HoldIdInput!) { holdRelease(input: $i) { hold { id } errors { code } } }",
        lambda s: {"i": {"holdId": s["hold_id"]}},
    ),
    "hold": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "query($id: ID!) { hold(id: $id) { id status } }",
        lambda s: {"id": s["hold_id"]},
    ),
    "paymentVoid": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: PaymentVoidInput!) { paymentVoid(input: $i) { refund { id } errors { code } } }",
        lambda s: {"i": {"paymentId": s["payment_id"], "idempotencyKey": key()}},
    ),
    **{
        op: (
            frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
            f"mutation($i: CardIdInput!) {{ {op}(input: $i) {{ card {{ id }} errors {{ code }} }} }}",
            lambda s: {"i": {"cardId": s["status_card_id"]}},
        )
        for op in ("cardFreeze", "cardUnfreeze", "cardReportLost")
    },
    "cardReplace": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "mutation($i: CardReplaceInput!) { cardReplace(input: $i) { card { id } errors { code } } }",
        lambda s: {"i": {"cardId": s["status_card_id"], "idempotencyKey": key()}},
    ),
    "cardSetPin": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "mutation($i: CardSetPinInput!) { cardSetPin(input: $i) { card { id } errors { code } } }",
        lambda s: {"i": {"cardId": s["card_id"], "pin": "583920"}},
    ),
    "cardBindUid": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "mutation($i: CardBindUidInput!) { cardBindUid(input: $i) { card { id } errors { code } } }",
        lambda s: {"i": {"cardId": s["status_card_id"], "cardUid": secrets.token_hex(4)}},
    ),
    "card": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "query($id: ID!) { card(id: $id) { id balance } }",
        lambda s: {"id": s["card_id"]},
    ),
    "myCards": (frozenset({R.CONSUMER}), "{ myCards { id } }", lambda s: {}),
    "bankTransferConfirm": (
        frozenset({R.CUSTODIAN}),
        "mutation($i: BankTransferConfirmInput!) { bankTransferConfirm(input: $i) { topUp { id } errors { code } } }",
        lambda s: {"i": {"topUpId": s["top_up_id"], "amount": 1, "bankReference": "BR1"}},
    ),
    "cardCancelRequest": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "mutation($i: CardCancelRequestInput!) { cardCancelRequest(input: $i) { cancellation { id } errors { code } } }",
        lambda s: {"i": {"cardId": s["card_id"], "reason": "不想用了", "payoutMethod": "CASH"}},
    ),
    "cardCancelApprove": (
        frozenset({R.MERCHANT_ADMIN, R.CUSTODIAN}),
        "mutation($i: CardCancellationIdInput!) { cardCancelApprove(input: $i) { cancellation { id } errors { code } } }",
        lambda s: {"i": {"cancellationId": s["cancellation_id"]}},
    ),
    "cardCancelReject": (
        frozenset({R.MERCHANT_ADMIN, R.CUSTODIAN}),
        "mutation($i: CardCancelRejectInput!) { cardCancelReject(input: $i) { cancellation { id } errors { code } } }",
        lambda s: {"i": {"cancellationId": s["cancellation_id"], "note": "n"}},
    ),
    "cardCancellation": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "query($id: ID!) { cardCancellation(id: $id) { id status } }",
        lambda s: {"id": s["cancellation_id"]},
    ),
    "cardCancellations": (
        frozenset({R.MERCHANT_ADMIN}),
        "query($id: ID!) { cardCancellations(merchantId: $id) { id } }",
        lambda s: {"id": s["merchant_id"]},
    ),
    "shiftOpen": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: ShiftOpenInput!) { shiftOpen(input: $i) { shift { id } errors { code } } }",
        lambda s: {"i": {"storeId": s["store_id"]}},
    ),
    "shiftClose": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: ShiftCloseInput!) { shiftClose(input: $i) { shift { id } errors { code } } }",
        lambda s: {"i": {"shiftId": "shf_nope", "countedCash": 0}},
    ),
    "dailyClose": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "mutation($i: DailyCloseInput!) { dailyClose(input: $i) { dailyClose { closed } errors { code } } }",
        lambda s: {"i": {"storeId": s["store_id"], "businessDay": "2001-01-01"}},
    ),
    "dailyCloseReport": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "query($id: ID!) { dailyCloseReport(storeId: $id) { expectedCash totals { kind amount } } }",
        lambda s: {"id": s["store_id"]},
    ),
    "escrowAccountOpen": (
        frozenset({R.OPERATOR}),
        "mutation($i: EscrowAccountOpenInput!) { escrowAccountOpen(input: $i) { escrowAccount { held } errors { code } } }",
        lambda s: {
            "i": {
                "merchantId": s["merchant_id"],
                "custodian": "机构",
                "bankAccountNo": "6222020200112233",
            }
        },
    ),
    "escrowWithdraw": (
        frozenset({R.CUSTODIAN}),
        "mutation($i: EscrowWithdrawInput!) { escrowWithdraw(input: $i) { escrowAccount { held } errors { code } } }",
        lambda s: {
            "i": {
                "merchantId": s["merchant_id"],
                "amount": 1,
                "reason": "r",
                "idempotencyKey": key(),
            }
        },
    ),
    "escrowDeposit": (
        frozenset({R.MERCHANT_ADMIN, R.CUSTODIAN}),
        "mutation($i: EscrowDepositInput!) { escrowDeposit(input: $i) { escrowAccount { held } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"], "amount": 1, "idempotencyKey": key()}},
    ),
    "escrowAccount": (
        frozenset({R.MERCHANT_ADMIN, R.CUSTODIAN, R.REGULATOR, R.OPERATOR}),
        "query($id: ID!) { escrowAccount(merchantId: $id) { held required movements { amount } } }",
        lambda s: {"id": s["merchant_id"]},
    ),
    "escrowShortfalls": (
        frozenset({R.REGULATOR, R.CUSTODIAN, R.OPERATOR}),
        "{ escrowShortfalls { merchantId held required } }",
        lambda s: {},
    ),
    "custodianEscrowAccounts": (
        frozenset({R.CUSTODIAN}),
        "{ custodianEscrowAccounts { merchantId held } }",
        lambda s: {},
    ),
    "topUpById": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "query($id: ID!) { topUpById(id: $id) { id status } }",
        lambda s: {"id": s["top_up_id"]},
    ),
    "payment": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "query($id: ID!) { payment(id: $id) { id amount } }",
        lambda s: {"id": s["payment_id"]},
    ),
    "paymentCodeCreate": (
        frozenset({R.CONSUMER}),
        "mutation($i: PaymentCodeCreateInput!) { paymentCodeCreate(input: $i) { code errors { code } } }",
        lambda s: {"i": {"cardId": s["card_id"]}},
    ),
    "paymentCodeDeviceRegister": (
        frozenset({R.CONSUMER}),
        "mutation($i: PaymentCodeDeviceRegisterInput!) { paymentCodeDeviceRegister(input: $i) { device { id } errors { code } } }",
        lambda s: {"i": {"cardId": s["card_id"], "deviceName": "phone"}},
    ),
    "paymentCodeDeviceRevoke": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "mutation($i: PaymentCodeDeviceRevokeInput!) { paymentCodeDeviceRevoke(input: $i) { device { id } errors { code } } }",
        lambda s: {"i": {"deviceId": "pcd_0000000000000000000000000a"}},
    ),
    "paymentCodeDevices": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "query($id: ID!) { paymentCodeDevices(cardId: $id) { id } }",
        lambda s: {"id": s["card_id"]},
    ),
    "merchantCodeCreate": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL}),
        "mutation($i: MerchantCodeCreateInput!) { merchantCodeCreate(input: $i) { merchantCode { payload } errors { code } } }",
        lambda s: {"i": {"storeId": s["store_id"], "amount": 100}},
    ),
    "merchantCodeResolve": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "mutation($i: MerchantCodeResolveInput!) { merchantCodeResolve(input: $i) { amount errors { code } } }",
        lambda s: {"i": {"payload": "000201"}},
    ),
    "storeMerchantCode": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "query($id: ID!) { storeMerchantCode(storeId: $id) { payload } }",
        lambda s: {"id": s["store_id"]},
    ),
    "terminalHeartbeat": (
        frozenset({R.TERMINAL}),
        "mutation($i: TerminalHeartbeatInput!) { terminalHeartbeat(input: $i) { terminal { id } errors { code } } }",
        lambda s: {"i": {"appVersion": "matrix", "readerStatus": "OK"}},
    ),
    # The terminal role's key is shared by every case: rotate and revoke spare terminals.
    "terminalKeyRotate": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR, R.TERMINAL}),
        "mutation($i: TerminalIdInput!) { terminalKeyRotate(input: $i) { terminalKey errors { code } } }",
        lambda s: {"i": {"terminalId": s["spare_terminal_id"]}},
    ),
    "terminalRevoke": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "mutation($i: TerminalIdInput!) { terminalRevoke(input: $i) { terminal { revoked } errors { code } } }",
        lambda s: {"i": {"terminalId": s["revocable_terminal_id"]}},
    ),
    "terminals": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "query($id: ID!) { terminals(merchantId: $id) { id lastSeenAt } }",
        lambda s: {"id": s["merchant_id"]},
    ),
    "terminalChargeCreate": (
        frozenset({R.TERMINAL}),
        "mutation($i: TerminalChargeCreateInput!) { terminalChargeCreate(input: $i) { terminalCharge { id } errors { code } } }",
        lambda s: {"i": {"amount": 1, "idempotencyKey": key()}},
    ),
    "terminalChargeCancel": (
        frozenset({R.TERMINAL, R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "mutation($i: TerminalChargeIdInput!) { terminalChargeCancel(input: $i) { terminalCharge { id } errors { code } } }",
        lambda s: {"i": {"chargeId": s["charge_id"]}},
    ),
    "terminalChargeConfirmPin": (
        frozenset({R.TERMINAL}),
        "mutation($i: TerminalChargeConfirmPinInput!) { terminalChargeConfirmPin(input: $i) { terminalCharge { id } errors { code } } }",
        lambda s: {"i": {"chargeId": s["charge_id"], "pin": "583920"}},
    ),
    "terminalCharge": (
        frozenset({R.TERMINAL, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "query($id: ID!) { terminalCharge(id: $id) { id status } }",
        lambda s: {"id": s["charge_id"]},
    ),
    "terminalChargeUpdated": (
        frozenset({R.TERMINAL, R.MERCHANT_ADMIN, R.MERCHANT_STAFF}),
        "subscription($id: ID!) { terminalChargeUpdated(chargeId: $id) { status } }",
        lambda s: {"id": s["charge_id"]},
    ),
    "readerTap": (
        frozenset({R.TERMINAL}),
        "mutation($i: ReaderTapInput!) { readerTap(input: $i) { payment { id } errors { code } } }",
        lambda s: {"i": {"uid": secrets.token_hex(7), "idempotencyKey": key()}},
    ),
    "readerDesfireAuthenticate": (
        frozenset({R.TERMINAL}),
        "mutation($i: ReaderDesfireAuthenticateInput!) { readerDesfireAuthenticate(input: $i) { authId errors { code } } }",
        lambda s: {"i": {"uid": secrets.token_hex(7), "cardChallenge": secrets.token_hex(16)}},
    ),
    "cardProductTapPolicySet": (
        frozenset({R.MERCHANT_ADMIN, R.OPERATOR}),
        "mutation($i: CardProductTapPolicySetInput!) { cardProductTapPolicySet(input: $i) { tapPolicy { technology } errors { code } } }",
        lambda s: {"i": {"productId": s["product_id"], "technology": "UID"}},
    ),
    "cardProductTapPolicy": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.TERMINAL, R.OPERATOR}),
        "query($id: ID!) { cardProductTapPolicy(productId: $id) { technology tapsPerMinute } }",
        lambda s: {"id": s["product_id"]},
    ),
    # Members and points (the consumer of the setup is a member of its merchant).
    "membershipJoin": (
        frozenset({R.CONSUMER}),
        "mutation($i: MembershipJoinInput!) { membershipJoin(input: $i) { membership { id } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"]}},
    ),
    "memberProfileUpdate": (
        frozenset({R.CONSUMER}),
        "mutation($i: MemberProfileUpdateInput!) { memberProfileUpdate(input: $i) { memberProfile { nickname } errors { code } } }",
        lambda s: {"i": {"nickname": "matrix"}},
    ),
    "loyaltyProgrammeUpdate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: LoyaltyProgrammeUpdateInput!) { loyaltyProgrammeUpdate(input: $i) { loyaltyProgramme { pendingDays } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"], "pendingDays": 7}},
    ),
    "tierCreate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: TierCreateInput!) { tierCreate(input: $i) { tier { id } errors { code } } }",
        lambda s: {
            "i": {"merchantId": s["merchant_id"], "name": "t", "rank": secrets.randbelow(999) + 2}
        },
    ),
    "tierUpdate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: TierUpdateInput!) { tierUpdate(input: $i) { tier { id } errors { code } } }",
        lambda s: {"i": {"tierId": s["tier_id"], "name": "银卡"}},
    ),
    "pointsRuleCreate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: PointsRuleCreateInput!) { pointsRuleCreate(input: $i) { pointsRule { id } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"], "name": "r", "pointsPerYuan": 1}},
    ),
    "pointsRuleUpdate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: PointsRuleUpdateInput!) { pointsRuleUpdate(input: $i) { pointsRule { id } errors { code } } }",
        lambda s: {"i": {"ruleId": s["rule_id"], "pointsPerYuan": 1}},
    ),
    "rewardCreate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: RewardCreateInput!) { rewardCreate(input: $i) { reward { id } errors { code } } }",
        lambda s: {"i": {"merchantId": s["merchant_id"], "name": "w", "pointsCost": 10}},
    ),
    "rewardUpdate": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: RewardUpdateInput!) { rewardUpdate(input: $i) { reward { id } errors { code } } }",
        lambda s: {"i": {"rewardId": s["reward_id"], "name": "w2"}},
    ),
    "pointsAdjust": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: PointsAdjustInput!) { pointsAdjust(input: $i) { membership { id } errors { code } } }",
        lambda s: {
            "i": {
                "membershipId": s["membership_id"],
                "points": 1,
                "reason": "r",
                "idempotencyKey": key(),
            }
        },
    ),
    "memberTierAssign": (
        frozenset({R.MERCHANT_ADMIN}),
        "mutation($i: MemberTierAssignInput!) { memberTierAssign(input: $i) { membership { id } errors { code } } }",
        lambda s: {
            "i": {"membershipId": s["membership_id"], "tierId": s["tier_id"], "reason": "r"}
        },
    ),
    "redeem": (
        frozenset({R.CONSUMER}),
        "mutation($i: RedeemInput!) { redeem(input: $i) { redemption { id } errors { code } } }",
        lambda s: {"i": {"rewardId": s["reward_id"], "idempotencyKey": key()}},
    ),
    "myMemberships": (frozenset({R.CONSUMER}), "{ myMemberships { id points } }", lambda s: {}),
    "myMemberProfile": (
        frozenset({R.CONSUMER}),
        "{ myMemberProfile { maskedPhone } }",
        lambda s: {},
    ),
    "membership": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "query($id: ID!) { membership(id: $id) { id points } }",
        lambda s: {"id": s["membership_id"]},
    ),
    "members": (
        frozenset({R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "query($id: ID!) { members(merchantId: $id, first: 5) { edges { node { id } } } }",
        lambda s: {"id": s["merchant_id"]},
    ),
    "loyaltyProgramme": (
        frozenset({R.CONSUMER, R.MERCHANT_ADMIN, R.MERCHANT_STAFF, R.OPERATOR}),
        "query($id: ID!) { loyaltyProgramme(merchantId: $id) { pendingDays rewards { id } } }",
        lambda s: {"id": s["merchant_id"]},
    ),
    "pointsChanged": (
        frozenset({R.CONSUMER}),
        "subscription($id: ID!) { pointsChanged(membershipId: $id) { points } }",
        lambda s: {"id": s["membership_id"]},
    ),
}
SUBSCRIPTIONS = {"viewerEvents", "balanceChanged", "terminalChargeUpdated", "pointsChanged"}


def schema_operations() -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for root in (Query, Mutation, Subscription):
        for field in root.__strawberry_definition__.fields:
            from strawberry.utils.str_converters import to_camel_case

            ops[to_camel_case(field.python_name)] = declared_roles(field.extensions)
    return ops


def test_every_operation_declares_a_permission_and_is_in_the_matrix():
    ops = schema_operations()
    undeclared = [name for name, roles in ops.items() if roles is False]
    assert not undeclared, f"operations without a declared permission: {undeclared}"
    assert set(ops) == set(MATRIX), (
        f"add to the matrix: {set(ops) - set(MATRIX)}; gone from the schema: {set(MATRIX) - set(ops)}"
    )
    for name, (expected, _, _) in MATRIX.items():
        assert ops[name] == expected, f"{name}: declared {ops[name]}, matrix says {expected}"


@pytest.fixture(scope="module")
async def principals(client, sms) -> dict[str, Any]:
    m = await make_merchant(client)
    operator = m.operator
    officials = {}
    for role in ("REGULATOR", "CUSTODIAN"):
        name = uid(role.lower()[:3])
        body = await gql(
            client,
            MATRIX["officialCreate"][1],
            {
                "i": {
                    "username": name,
                    "password": PASSWORD,
                    "role": role,
                    "organisation": "机构",
                    "regionCode": "110000",
                }
            },
            token=operator,
        )
        assert body["data"]["officialCreate"]["errors"] == [], body
        officials[role] = await token_for(client, name, PASSWORD)
    opened = await gql(
        client,
        MATRIX["escrowAccountOpen"][1],
        MATRIX["escrowAccountOpen"][2]({"merchant_id": m.merchant_id}),
        token=operator,
    )
    assert opened["data"]["escrowAccountOpen"]["errors"] == [], opened
    phone = "135" + f"{secrets.randbelow(10**8):08d}"
    consumer = await consumer_token(client, sms, phone)
    card = await make_card(client, m, load=400_000, holder_phone=phone)
    status_card = await make_card(client, m, load=1000, holder_phone=phone)
    payment = (await pay(client, m, card["id"], 100_000))["payment"]
    to_cancel = await make_card(client, m, load=1000, holder_phone=phone)
    cancel = await gql(
        client,
        MATRIX["cardCancelRequest"][1],
        {"i": {"cardId": to_cancel["id"], "reason": "搬家", "payoutMethod": "CASH"}},
        token=consumer,
    )
    assert cancel["data"]["cardCancelRequest"]["errors"] == [], cancel
    topped = await gql(
        client,
        MATRIX["topUp"][1],
        {"i": {"cardId": card["id"], "amount": 100, "channel": "CASH", "idempotencyKey": key()}},
        token=m.staff,
    )
    held = await gql(
        client,
        MATRIX["cardHold"][1],
        {
            "i": {
                "storeId": m.store_id,
                "cardId": card["id"],
                "amount": 100,
                "idempotencyKey": key(),
            }
        },
        token=m.staff,
    )
    assert held["data"]["cardHold"]["errors"] == [], held
    charged = await gql(
        client,
        MATRIX["terminalChargeCreate"][1],
        MATRIX["terminalChargeCreate"][2]({}),
        terminal_key=m.terminal_key,
    )
    assert charged["data"]["terminalChargeCreate"]["errors"] == [], charged
    spares = []
    for name in ("spare", "revocable"):
        registered = await gql(
            client,
            MATRIX["terminalRegister"][1].replace("terminalKey", "terminal { id } terminalKey"),
            {"i": {"storeId": m.store_id, "name": name}},
            token=m.admin,
        )
        spares.append(registered["data"]["terminalRegister"]["terminal"]["id"])
    loyalty = {}
    for op, field, i in (
        ("pointsRuleCreate", "pointsRule", {"name": "基础", "pointsPerYuan": 1}),
        ("tierCreate", "tier", {"name": "普通", "rank": 1}),
        ("rewardCreate", "reward", {"name": "礼品", "pointsCost": 10, "stock": 5}),
    ):
        made = await gql(
            client, MATRIX[op][1], {"i": {"merchantId": m.merchant_id, **i}}, token=m.admin
        )
        assert made["data"][op]["errors"] == [], made
        loyalty[field] = made["data"][op][field]["id"]
    joined = await gql(
        client, MATRIX["membershipJoin"][1], {"i": {"merchantId": m.merchant_id}}, token=consumer
    )
    return {
        "setup": {
            "merchant_id": m.merchant_id,
            "rule_id": loyalty["pointsRule"],
            "tier_id": loyalty["tier"],
            "reward_id": loyalty["reward"],
            "membership_id": joined["data"]["membershipJoin"]["membership"]["id"],
            "store_id": m.store_id,
            "product_id": await make_product(client, m, "BEARER"),
            "card_id": card["id"],
            "status_card_id": status_card["id"],
            "payment_id": payment["id"],
            "hold_id": held["data"]["cardHold"]["hold"]["id"],
            "cancellation_id": cancel["data"]["cardCancelRequest"]["cancellation"]["id"],
            "top_up_id": topped["data"]["topUp"]["topUp"]["id"],
            "charge_id": charged["data"]["terminalChargeCreate"]["terminalCharge"]["id"],
            "spare_terminal_id": spares[0],
            "revocable_terminal_id": spares[1],
        },
        "auth": {
            ANON: {},
            R.CONSUMER: {"token": consumer},
            R.MERCHANT_STAFF: {"token": m.staff},
            R.MERCHANT_ADMIN: {"token": m.admin},
            R.TERMINAL: {"terminal_key": m.terminal_key},
            R.CUSTODIAN: {"token": officials["CUSTODIAN"]},
            R.REGULATOR: {"token": officials["REGULATOR"]},
            R.OPERATOR: {"token": operator},
        },
    }


CASES = [(op, role) for op in MATRIX if op not in SUBSCRIPTIONS for role in [ANON, *Role]]
SUB_CASES = [(op, role) for op in sorted(SUBSCRIPTIONS) for role in [ANON, *Role]]


@pytest.mark.parametrize(("operation", "role"), CASES, ids=[f"{o}-{r}" for o, r in CASES])
async def test_http_operation_by_role(client, principals, operation, role):
    allowed, document, variables = MATRIX[operation]
    body = await gql(client, document, variables(principals["setup"]), **principals["auth"][role])
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
    assert "INTERNAL_SERVER_ERROR" not in codes, body
    if allowed is None or (role != ANON and role in allowed):
        assert not codes & {"FORBIDDEN", "UNAUTHENTICATED"}, f"{role} refused {operation}: {body}"
        assert body["data"] is not None and body["data"].get(operation) is not None, body
    elif role == ANON:
        assert codes == {"UNAUTHENTICATED"}, body
    else:
        assert codes == {"FORBIDDEN"}, body


@pytest.mark.parametrize(("operation", "role"), SUB_CASES, ids=[f"{o}-{r}" for o, r in SUB_CASES])
async def test_subscription_by_role(app, principals, operation, role):
    """Subscriptions run through the schema with the same context the websocket builds."""
    from resolvers.context import Context, authenticate

    schema = app.state.yikatong_schema
    auth = principals["auth"][role]
    header = (
        f"Bearer {auth['token']}"
        if "token" in auth
        else f"Terminal {auth['terminal_key']}"
        if "terminal_key" in auth
        else None
    )
    viewer, _ = await authenticate(header, "127.0.0.1", "matrix")

    class _Req:
        client = None
        headers: dict[str, str] = {}

    ctx = Context(
        request=_Req(),
        response=None,
        broker=app.state.yikatong.broker,  # type: ignore[arg-type]
        request_id="matrix",
        viewer=viewer,
    )
    allowed, document, variables = MATRIX[operation]
    result = await schema.subscribe(
        document, variable_values=variables(principals["setup"]), context_value=ctx
    )
    if hasattr(result, "__anext__"):
        try:
            first = await asyncio.wait_for(result.__anext__(), 0.3)
        except TimeoutError:
            first = None
        finally:
            await result.aclose()
    else:
        first = result
    errors = getattr(first, "errors", None) or []
    codes = {getattr(e, "extensions", {}).get("code") for e in errors}
    if role != ANON and role in allowed:
        assert not codes, codes
    elif role == ANON:
        assert codes == {"UNAUTHENTICATED"}, errors
    else:
        assert codes == {"FORBIDDEN"}, errors
